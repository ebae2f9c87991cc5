#!/usr/bin/env bash
# ClearKey licences/s of several builds of Tessera, measured in one run, alternating builds
# round by round so that drift of the machine falls on all of them alike, with the bare hyper
# baseline measured in every round:
#
#   load-tests/ab.sh NAME=BINARY [NAME=BINARY...]   (e.g. before=/tmp/old/tessera after=target/release/tessera)
#
# Each round starts with the next build in turn (round 1: A B C, round 2: B C A...): on these
# VMs the later runs of a round are often slower, and rotating spreads that over every build.
#   ROUNDS=3 DURATION=8 CONNECTIONS=50 TOKENS=300000 PINNED=1 to tune
#
# The workload is load-tests/run.sh's clearkey scenario: dev mode (embedded store, audit trail
# on), three keys per licence, a different HS256 token on every request. PINNED=1 puts the
# server on CPU 0 and wrk on CPU 1 (as run.sh does); PINNED=0 lets both float, with the
# runtime's default worker count. Besides licences/s and latency it prints the server's CPU time
# per request (utime + stime over the run): on a noisy VM it moves far less than throughput.
# Bounded: each wrk run lasts DURATION seconds on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-50}
TOKENS=${TOKENS:-300000}
PINNED=${PINNED:-1}
PUB=127.0.0.1:18080
INT=127.0.0.1:18081
BASE=127.0.0.1:18090
[ $# -ge 1 ] || { echo "usage: $0 NAME=BINARY [NAME=BINARY...]" >&2; exit 64; }
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --example baseline
if [ "$PINNED" = 1 ]; then SERVER="taskset -c 0"; CLIENT="taskset -c 1"; else SERVER=""; CLIENT=""; fi
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listening on $1" >&2; return 1; }
run_wrk() { # URL KIDS
  env TOKENS="$WORK/tokens.txt" KIDS="$2" $CLIENT wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s load-tests/clearkey.lua "$1" | grep '^RESULT'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
line() { # NAME RESULT CPU_TICKS
  python3 -c 'import os, sys
r = {k: int(v) for k, v in (f.split("=") for f in sys.argv[2].split()[1:])}
rps = r["requests"] / (r["duration_us"] / 1e6)
cpu_us = int(sys.argv[3]) / os.sysconf("SC_CLK_TCK") * 1e6 / max(r["requests"], 1)
print("%-16s%10.0f/s  p50 %6d us  p99 %6d us  server CPU %5.1f us/req  errors %d" % (sys.argv[1], rps, r["p50_us"], r["p99_us"], cpu_us, r["errors"]))' "$@"
}

first_bin=${1#*=}
builds=("$@")
for round in $(seq "$ROUNDS"); do
  echo "== round $round (pinned=$PINNED) =="
  for i in $(seq 0 $(( ${#builds[@]} - 1 ))); do
    spec=${builds[$(( (i + round - 1) % ${#builds[@]} ))]}
    name=${spec%%=*} bin=${spec#*=}
    rm -rf "$WORK/data"
    TESSERA_LOG_LEVEL=warn $SERVER "$bin" serve --data-dir "$WORK/data" --public-addr $PUB \
      --internal-addr $INT >/dev/null 2>"$WORK/err" &
    pid=$!; pids+=($pid)
    wait_port $PUB
    keys=$("$bin" keys --server "http://$INT" create --content-id bench-movie --track SD --track HD --track AUDIO)
    [ -s "$WORK/tokens.txt" ] || "$first_bin" token --tenant demo --content-id bench-movie --ttl 3600 --count "$TOKENS" >"$WORK/tokens.txt"
    kids=$(python3 -c 'import base64, json, sys, uuid
print(json.dumps([base64.urlsafe_b64encode(uuid.UUID(k["kid"]).bytes).decode().rstrip("=") for k in json.loads(sys.argv[1])["keys"]]))' "$keys")
    before=$(cpu_ticks "$pid")
    result=$(run_wrk "http://$PUB/clearkey/license" "$kids")
    line "$name" "$result" $(( $(cpu_ticks "$pid") - before ))
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  $SERVER target/release/examples/baseline $BASE >/dev/null &
  pid=$!; pids+=($pid)
  wait_port $BASE
  before=$(cpu_ticks "$pid")
  result=$(run_wrk "http://$BASE/" '[]')
  line "bare hyper" "$result" $(( $(cpu_ticks "$pid") - before ))
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
