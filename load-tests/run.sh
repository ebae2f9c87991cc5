#!/usr/bin/env bash
# ClearKey licence throughput vs a bare hyper endpoint, measured in one run on this machine.
#
#   load-tests/run.sh            (DURATION=8 CONNECTIONS=50 TOKENS=900000 to tune)
#
# Tessera runs in dev mode (embedded store, audit trail on, HS256 tokens) pinned to CPU 0;
# wrk runs pinned to CPU 1 and sends a DIFFERENT token on every request, as real viewers do,
# for a warm cache (keys created beforehand, one warm-up request). The baseline is
# load-tests/baseline.rs on the same core with the same wrk script. Prints licences/s,
# p50/p99 and the ratio. Bounded: two runs of DURATION seconds on 127.0.0.1, then it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-50}
TOKENS=${TOKENS:-900000}
PUB=127.0.0.1:18080
INT=127.0.0.1:18081
BASE=127.0.0.1:18090

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi
NCPU=$(nproc)
SERVER_CPU=0
CLIENT_CPU=$(( NCPU > 1 ? 1 : 0 ))

cargo build --release --quiet --bin tessera --example baseline
BIN=target/release/tessera
OUT=load-tests/out
mkdir -p "$OUT"
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listening on $1" >&2; return 1; }

# --- Tessera ---------------------------------------------------------------------------
TESSERA_LOG_LEVEL=warn taskset -c $SERVER_CPU "$BIN" serve --data-dir "$WORK/data" \
  --public-addr $PUB --internal-addr $INT >"$WORK/tessera.out" 2>"$WORK/tessera.err" &
pids+=($!)
wait_port $PUB
KEYS_JSON=$("$BIN" keys --server "http://$INT" create --content-id bench-movie --track SD --track HD --track AUDIO)
KIDS=$(python3 -c '
import base64, json, sys, uuid
keys = json.loads(sys.argv[1])["keys"]
print(json.dumps([base64.urlsafe_b64encode(uuid.UUID(k["kid"]).bytes).decode().rstrip("=") for k in keys]))' "$KEYS_JSON")
echo "minting $TOKENS distinct HS256 entitlement tokens..." >&2
"$BIN" token --tenant demo --content-id bench-movie --ttl 3600 --count "$TOKENS" >"$WORK/tokens.txt"
first=$(head -1 "$WORK/tokens.txt")
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$PUB/clearkey/license" \
  -H "Authorization: Bearer $first" -d "{\"kids\":$KIDS}")
[ "$status" = 200 ] || { echo "warm-up licence failed: HTTP $status" >&2; exit 1; }

run_wrk() {
  TOKENS="$WORK/tokens.txt" KIDS="$KIDS" taskset -c $CLIENT_CPU \
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s load-tests/clearkey.lua "$1" | tee -a "$OUT/wrk.log" | grep '^RESULT'
}
: >"$OUT/wrk.log"
echo "== tessera /clearkey/license ==" >&2
T=$(run_wrk "http://$PUB/clearkey/license")
METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_(licenses_issued_total\{protocol="clearkey"\}|key_cache_(hits|misses)_total)')
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

# --- bare hyper baseline ---------------------------------------------------------------
taskset -c $SERVER_CPU target/release/examples/baseline $BASE >/dev/null &
pids+=($!)
wait_port $BASE
echo "== bare hyper baseline ==" >&2
B=$(run_wrk "http://$BASE/")

python3 - "$T" "$B" "$TOKENS" "$METRICS" <<'PY' | tee "$OUT/result.txt"
import sys
def parse(line):
    return {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
t, b, tokens, metrics = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rps = lambda r: r["requests"] / (r["duration_us"] / 1e6)
print(f"{'endpoint':<28}{'req/s':>10}{'p50 us':>9}{'p99 us':>9}{'errors':>8}")
print(f"{'tessera clearkey licence':<28}{rps(t):>10.0f}{t['p50_us']:>9}{t['p99_us']:>9}{t['errors']:>8}")
print(f"{'bare hyper baseline':<28}{rps(b):>10.0f}{b['p50_us']:>9}{b['p99_us']:>9}{b['errors']:>8}")
print(f"ratio tessera/baseline: {rps(t) / rps(b):.3f}  (target >= 0.75)")
if t["requests"] > tokens:
    print(f"note: {t['requests']} requests > {tokens} tokens: some tokens were reused; raise TOKENS")
print("server metrics: " + " ".join(metrics.split()))
if t["errors"]:
    sys.exit("tessera answered errors under load")
PY
