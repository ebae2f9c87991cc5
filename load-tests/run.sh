#!/usr/bin/env bash
# Licence throughput, measured in one run on this machine, against a reference in the same run.
#
#   load-tests/run.sh [clearkey|widevine|speke|fairplay|playready|postgres|wan|all]  (default all)
#   DURATION=8 CONNECTIONS=50 TOKENS=900000 to tune
#
# clearkey: POST /clearkey/license vs a bare hyper endpoint (load-tests/baseline.rs) on the
#   same core with the same wrk script. Target ratio >= 0.75.
# widevine: POST /widevine/license with pre-made challenges (load-tests/wv_challenge.rs, a
#   device from `tessera devices widevine`), warm device-chain and key caches, vs the
#   per-licence crypto floor measured by load-tests/floor in the same run: the fastest
#   implementation of each step available from the registries (target ratio >= 0.6). Also
#   printed: the ratio to the strict floor (Tessera's own steps where faster) and to a bare
#   hyper endpoint spinning the strict floor per request.
# fairplay: POST /fairplay/license with pre-made SPCs (load-tests/fp_spc.rs, v2 containers from
#   a device of `tessera devices fairplay`, raw bodies) vs the per-CKC crypto floor that
#   load-tests/floor measures in the same run (one RSA-2048 OAEP-SHA256 decryption with the
#   fastest backend, plus the AES work). Target ratio >= 0.6.
# playready: POST /playready/license with pre-made SOAP challenges (load-tests/pr_challenge.rs,
#   a device under the dev root, one KID), warm device-chain and key caches, signed responses
#   (dev mode signs), vs the per-licence crypto floor load-tests/floor measures in the same
#   run: challenge ECDSA verify, ElGamal decryption, then per key a point from CI‖CK and an
#   ElGamal encryption, and the response signature, each with the fastest backend from the
#   registries. Target ratio >= 0.6.
# postgres: the PostgreSQL backend with a primary and a synchronous standby (remote_apply) on
#   loopback, Tessera reading the standby: ClearKey licences with a warm key cache and with
#   none (every licence reads the standby), and sequential key-creation latency, each against
#   the embedded store in the same run. No target ratio: figures for docs/replication.md.
# wan: the same two clusters with a delay between the "datacenters" (load-tests/delay_proxy.rs,
#   a mock of the link: this kernel has no netem qdisc) on the standby's replication stream and
#   on node B's connection to the primary, at one-way 0 ms and WAN_DELAY_MS (default 10) in
#   the same run: key creation at node A (next to the primary) pays the round trip to the
#   standby's apply; licences at node B (no key cache: every licence reads its local standby)
#   do not. Printed: both latencies at both delays and their ratios.
# speke: POST /speke/v2 as an encryptor starting new content on every request (fresh contentId
#   and KIDs: each request creates, seals and durably stores its keys, then answers with
#   Widevine, PlayReady and FairPlay signalling), with 2 and 8 keys, clear and encrypted
#   delivery (RSA-2048 recipient). Printed: requests/s, p50/p99, and the ratio to a bare hyper
#   endpoint answering a response-sized body. No target ratio: the cost is the store write.
#
# Tessera runs in dev mode (embedded store, audit trail on, HS256 tokens) pinned to CPU 0;
# wrk runs pinned to CPU 1 and sends a DIFFERENT token on every request, as real viewers do.
# Bounded: each wrk run lasts DURATION seconds on 127.0.0.1, then everything stops.
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${1:-all}
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

cargo build --release --quiet --bin tessera --example baseline --example wv_challenge --example fp_spc --example pr_challenge --example delay_proxy
BIN=target/release/tessera
OUT=load-tests/out
mkdir -p "$OUT"
: >"$OUT/wrk.log"
: >"$OUT/result.txt"
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listening on $1" >&2; return 1; }

start_tessera() {
  rm -rf "$WORK/data"
  TESSERA_LOG_LEVEL=warn taskset -c $SERVER_CPU "$BIN" serve --data-dir "$WORK/data" \
    --public-addr $PUB --internal-addr $INT >"$WORK/tessera.out" 2>"$WORK/tessera.err" &
  TESSERA_PID=$!
  pids+=($TESSERA_PID)
  wait_port $PUB
  KEYS_JSON=$("$BIN" keys --server "http://$INT" create --content-id bench-movie --track SD --track HD --track AUDIO)
  if [ ! -s "$WORK/tokens.txt" ]; then
    echo "minting $TOKENS distinct HS256 entitlement tokens..." >&2
    "$BIN" token --tenant demo --content-id bench-movie --ttl 3600 --count "$TOKENS" >"$WORK/tokens.txt"
  fi
}

stop_tessera() { kill "$TESSERA_PID"; wait "$TESSERA_PID" 2>/dev/null || true; }

# run_wrk SCRIPT URL [ENV=VALUE...]
run_wrk() {
  local script=$1 url=$2; shift 2
  env TOKENS="$WORK/tokens.txt" "$@" taskset -c $CLIENT_CPU \
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$url" | tee -a "$OUT/wrk.log" | grep '^RESULT'
}

report() { # report NAME RESULT REFERENCE_NAME REFERENCE_RPS TARGET METRICS
  python3 - "$@" <<'PY' | tee -a "$OUT/result.txt"
import sys
name, line, ref_name, ref_rps, target, metrics = sys.argv[1:7]
r = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
rps = r["requests"] / (r["duration_us"] / 1e6)
ref = float(ref_rps)
print(f"{name:<30}{rps:>10.0f} req/s  p50 {r['p50_us']} us  p99 {r['p99_us']} us  errors {r['errors']}")
print(f"{ref_name:<30}{ref:>10.0f} req/s")
print(f"ratio: {rps / ref:.3f}  (target >= {target})")
print("server metrics: " + " ".join(metrics.split()))
if r["errors"]:
    sys.exit(f"{name}: tessera answered errors under load")
PY
}

rps_of() { python3 -c 'import sys; r={k:int(v) for k,v in (f.split("=") for f in sys.argv[1].split()[1:])}; print(r["requests"]/(r["duration_us"]/1e6))' "$1"; }

if [ "$SCENARIO" = clearkey ] || [ "$SCENARIO" = all ]; then
  start_tessera
  KIDS=$(python3 -c '
import base64, json, sys, uuid
keys = json.loads(sys.argv[1])["keys"]
print(json.dumps([base64.urlsafe_b64encode(uuid.UUID(k["kid"]).bytes).decode().rstrip("=") for k in keys]))' "$KEYS_JSON")
  first=$(head -1 "$WORK/tokens.txt")
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$PUB/clearkey/license" \
    -H "Authorization: Bearer $first" -d "{\"kids\":$KIDS}")
  [ "$status" = 200 ] || { echo "warm-up licence failed: HTTP $status" >&2; exit 1; }
  echo "== tessera /clearkey/license ==" >&2
  T=$(run_wrk load-tests/clearkey.lua "http://$PUB/clearkey/license" KIDS="$KIDS")
  METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_(licenses_issued_total\{protocol="clearkey"\}|key_cache_(hits|misses)_total)')
  stop_tessera
  taskset -c $SERVER_CPU target/release/examples/baseline $BASE >/dev/null &
  BASE_PID=$!
  pids+=($BASE_PID)
  wait_port $BASE
  echo "== bare hyper baseline ==" >&2
  B=$(run_wrk load-tests/clearkey.lua "http://$BASE/" KIDS='[]')
  kill "$BASE_PID"; wait "$BASE_PID" 2>/dev/null || true
  report "tessera clearkey licence" "$T" "bare hyper baseline" "$(rps_of "$B")" 0.75 "$METRICS"
fi

if [ "$SCENARIO" = widevine ] || [ "$SCENARIO" = all ]; then
  echo "== per-licence crypto floor (load-tests/floor) ==" >&2
  (cd load-tests/floor && cargo build --release --quiet)
  start_tessera
  "$BIN" devices widevine --out "$WORK/device.wvd" >/dev/null
  KIDS=$(python3 -c 'import json,sys; print(" ".join(k["kid"] for k in json.loads(sys.argv[1])["keys"]))' "$KEYS_JSON")
  mkdir -p "$WORK/challenges"
  MSG=$(target/release/examples/wv_challenge "$WORK/device.wvd" "$WORK/challenges" 16 $KIDS | sed 's/msg_bytes=//')
  first=$(head -1 "$WORK/tokens.txt")
  LIC=$(curl -s -X POST "http://$PUB/widevine/license" -H "Authorization: Bearer $first" \
    --data-binary @"$WORK/challenges/challenge-0.bin" -o "$WORK/license.bin" -w '%{http_code} %{size_download}')
  [ "${LIC% *}" = 200 ] || { echo "warm-up Widevine licence failed: HTTP $LIC" >&2; exit 1; }
  echo "== tessera /widevine/license (request $MSG B, response ${LIC#* } B, 3 keys) ==" >&2
  W=$(run_wrk load-tests/widevine.lua "http://$PUB/widevine/license" CHALLENGES="$WORK/challenges" COUNT=16)
  METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_(licenses_issued_total\{protocol="widevine"\}|key_cache_(hits|misses)_total)')
  stop_tessera
  # The floor on the same core the server used, with the request and licence sizes of this run.
  FLOOR_OUT=$(taskset -c $SERVER_CPU load-tests/floor/target/release/tessera-crypto-floor "$MSG" "${LIC#* }" 3)
  echo "$FLOOR_OUT" | tee -a "$OUT/result.txt" >&2
  FLOOR_US=$(echo "$FLOOR_OUT" | sed -n 's/^FLOOR floor_us=\([0-9.]*\).*/\1/p')
  REGISTRY_US=$(echo "$FLOOR_OUT" | sed -n 's/^FLOOR .*registry_floor_us=\([0-9.]*\).*/\1/p')
  # A third reference: bare hyper spinning the strict floor per request, with a licence-sized
  # answer: what an HTTP service doing only the floor's work reaches here, transport included.
  BASELINE_WORK_US=$FLOOR_US BASELINE_BODY_BYTES=${LIC#* } taskset -c $SERVER_CPU target/release/examples/baseline $BASE >/dev/null &
  BASE_PID=$!
  pids+=($BASE_PID)
  wait_port $BASE
  echo "== bare hyper spinning the floor ==" >&2
  H=$(run_wrk load-tests/widevine.lua "http://$BASE/" CHALLENGES="$WORK/challenges" COUNT=16)
  kill "$BASE_PID"; wait "$BASE_PID" 2>/dev/null || true
  report "tessera widevine licence" "$W" "registry crypto floor (1 core)" "$(python3 -c "print(1e6/$REGISTRY_US)")" 0.6 "$METRICS"
  python3 - "$W" "$FLOOR_US" "$H" <<'PY' | tee -a "$OUT/result.txt"
import sys
parse = lambda l: {k: int(v) for k, v in (f.split("=") for f in l.split()[1:])}
rps = lambda r: r["requests"] / (r["duration_us"] / 1e6)
w, floor, h = parse(sys.argv[1]), float(sys.argv[2]), parse(sys.argv[3])
print(f"ratio to the strict floor ({floor:.1f} us, Tessera's faster steps included): {rps(w) * floor / 1e6:.3f}")
print(f"ratio to bare hyper spinning the strict floor ({rps(h):.0f} req/s): {rps(w) / rps(h):.3f}")
PY
fi

if [ "$SCENARIO" = speke ] || [ "$SCENARIO" = all ]; then
  start_tessera
  SVC=$("$BIN" token --tenant demo --scope keys:write --scope keys:read --ttl 3600)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/recipient.key" -subj /CN=bench-encryptor \
    -days 1 -outform DER -out "$WORK/recipient.der" 2>/dev/null
  CERT_B64=$(base64 -w0 "$WORK/recipient.der")
  for mode in clear encrypted; do
    for keys in 2 8; do
      cert=""; [ "$mode" = encrypted ] && cert=$CERT_B64
      SIZE=$(curl -s -o /dev/null -w '%{size_download}' -X POST "http://$INT/speke/v2" -H "Authorization: Bearer $SVC" \
        -H 'X-Speke-Version: 2.0' --data-binary @<(KEYS=$keys CERT_B64=$cert python3 load-tests/speke_body.py))
      echo "== tessera /speke/v2: $keys keys, $mode delivery (response $SIZE B) ==" >&2
      R=$(run_wrk load-tests/speke.lua "http://$INT/speke/v2" TOKEN="$SVC" KEYS=$keys CERT_B64="$cert")
      eval "SPEKE_${mode}_${keys}='$R'"
      eval "SIZE_${mode}_${keys}=$SIZE"
    done
  done
  METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_(packaging_responses_total\{protocol="speke"|keys_created_total|store_operation_duration_seconds_(sum|count)\{op="insert_keys")')
  stop_tessera
  for mode in clear encrypted; do
    for keys in 2 8; do
      eval "R=\$SPEKE_${mode}_${keys}"; eval "SIZE=\$SIZE_${mode}_${keys}"
      BASELINE_BODY_BYTES=$SIZE taskset -c $SERVER_CPU target/release/examples/baseline $BASE >/dev/null &
      BASE_PID=$!
      pids+=($BASE_PID)
      wait_port $BASE
      B=$(run_wrk load-tests/speke.lua "http://$BASE/" TOKEN=x KEYS=$keys CERT_B64="")
      kill "$BASE_PID"; wait "$BASE_PID" 2>/dev/null || true
      report "tessera speke $keys keys $mode" "$R" "bare hyper, $SIZE B answer" "$(rps_of "$B")" "none" "$METRICS"
    done
  done
fi

if [ "$SCENARIO" = fairplay ] || [ "$SCENARIO" = all ]; then
  echo "== per-CKC crypto floor (load-tests/floor) ==" >&2
  (cd load-tests/floor && cargo build --release --quiet)
  start_tessera
  FP_KID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["keys"][0]["kid"])' "$KEYS_JSON")
  "$BIN" devices fairplay --out "$WORK/fp-device.json" >/dev/null
  mkdir -p "$WORK/spcs"
  PAYLOAD=$(target/release/examples/fp_spc "$WORK/fp-device.json" "$WORK/spcs" 16 "skd://$FP_KID" | sed 's/payload_bytes=//')
  first=$(head -1 "$WORK/tokens.txt")
  CKC=$(curl -s -X POST "http://$PUB/fairplay/license" -H "Authorization: Bearer $first" \
    --data-binary @"$WORK/spcs/challenge-0.bin" -o "$WORK/ckc.bin" -w '%{http_code} %{size_download}')
  [ "${CKC% *}" = 200 ] || { echo "warm-up FairPlay licence failed: HTTP $CKC" >&2; exit 1; }
  echo "== tessera /fairplay/license (SPC payload $PAYLOAD B, CKC ${CKC#* } B) ==" >&2
  F=$(run_wrk load-tests/widevine.lua "http://$PUB/fairplay/license" CHALLENGES="$WORK/spcs" COUNT=16)
  METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_(licenses_issued_total\{protocol="fairplay"\}|key_cache_(hits|misses)_total)')
  stop_tessera
  FLOOR_OUT=$(taskset -c $SERVER_CPU load-tests/floor/target/release/tessera-crypto-floor fairplay "$PAYLOAD" "$(( ${CKC#* } - 28 ))")
  echo "$FLOOR_OUT" | tee -a "$OUT/result.txt" >&2
  REGISTRY_US=$(echo "$FLOOR_OUT" | sed -n 's/^FLOOR .*registry_floor_us=\([0-9.]*\).*/\1/p')
  report "tessera fairplay CKC" "$F" "crypto floor (1 core)" "$(python3 -c "print(1e6/$REGISTRY_US)")" 0.6 "$METRICS"
fi

if [ "$SCENARIO" = playready ] || [ "$SCENARIO" = all ]; then
  echo "== per-licence crypto floor (load-tests/floor) ==" >&2
  (cd load-tests/floor && cargo build --release --quiet)
  start_tessera
  PR_KID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["keys"][0]["kid"])' "$KEYS_JSON")
  "$BIN" devices playready --server-public-key >"$WORK/pr-server.pem"
  mkdir -p "$WORK/prch"
  SIZES=$(target/release/examples/pr_challenge "$WORK/pr-server.pem" "$WORK/prch" 16 "$PR_KID")
  LA=$(echo "$SIZES" | sed -n 's/.*la_bytes=\([0-9]*\).*/\1/p')
  DATA=$(echo "$SIZES" | sed -n 's/.*client_data_bytes=\([0-9]*\).*/\1/p')
  first=$(head -1 "$WORK/tokens.txt")
  LIC=$(curl -s -X POST "http://$PUB/playready/license" -H "Authorization: Bearer $first" \
    --data-binary @"$WORK/prch/challenge-0.bin" -o "$WORK/pr-license.xml" -w '%{http_code} %{size_download}')
  [ "${LIC% *}" = 200 ] || { echo "warm-up PlayReady licence failed: HTTP $LIC" >&2; cat "$WORK/pr-license.xml" >&2; exit 1; }
  echo "== tessera /playready/license (challenge $(wc -c <"$WORK/prch/challenge-0.bin") B, response ${LIC#* } B, 1 key, signed) ==" >&2
  P=$(run_wrk load-tests/widevine.lua "http://$PUB/playready/license" CHALLENGES="$WORK/prch" COUNT=16)
  METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_(licenses_issued_total\{protocol="playready"\}|key_cache_(hits|misses)_total)')
  stop_tessera
  FLOOR_OUT=$(taskset -c $SERVER_CPU load-tests/floor/target/release/tessera-crypto-floor playready "$LA" "$DATA" 1)
  echo "$FLOOR_OUT" | tee -a "$OUT/result.txt" >&2
  REGISTRY_US=$(echo "$FLOOR_OUT" | sed -n 's/^FLOOR .*registry_floor_us=\([0-9.]*\).*/\1/p')
  report "tessera playready licence" "$P" "registry crypto floor (1 core)" "$(python3 -c "print(1e6/$REGISTRY_US)")" 0.6 "$METRICS"
fi

if [ "$SCENARIO" = postgres ] || [ "$SCENARIO" = wan ] || [ "$SCENARIO" = all ]; then
  # Two "datacenters" on loopback: a primary and a synchronous standby (remote_apply), Tessera
  # reading the standby. Compared in the same run with the embedded store.
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort | tail -1)
  if [ -z "$PGBIN" ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
  fi
  AS=(); [ "$(id -u)" = 0 ] && AS=(runuser -u postgres --)
  PGW=$(mktemp -d); chmod 755 "$PGW"; [ "$(id -u)" = 0 ] && chown postgres "$PGW"
  PA=15432; PB=15433
  pg_stop() { for d in a b; do "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGW/$d" -m immediate stop >/dev/null 2>&1 || true; done; rm -rf "$PGW"; }
  trap 'pg_stop; cleanup' EXIT
  "${AS[@]}" "$PGBIN/initdb" -U postgres --auth=trust -D "$PGW/a" >/dev/null
  cat >>"$PGW/a/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PA
unix_socket_directories = '$PGW'
wal_level = replica
max_wal_senders = 10
synchronous_commit = remote_apply
synchronous_standby_names = 'ANY 1 (dc_b)'
EOF
  printf 'host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' >>"$PGW/a/pg_hba.conf"
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGW/a" -l "$PGW/a/server.log" -w start >/dev/null
  "${AS[@]}" "$PGBIN/pg_basebackup" -h 127.0.0.1 -p $PA -U postgres -D "$PGW/b" -X stream -R
  printf "port = %s\ncluster_name = 'dc_b'\n" $PB >>"$PGW/b/postgresql.conf"
  printf "primary_conninfo = 'host=127.0.0.1 port=%s user=postgres application_name=dc_b'\n" $PA >>"$PGW/b/postgresql.auto.conf"
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGW/b" -l "$PGW/b/server.log" -w start >/dev/null
  SECRET=$(tr -d '\n' <keys/dev/demo-jwt-hs256.secret)
  pg_config() { # pg_config KEY_CACHE_CAPACITY
    cat <<EOF
[server]
public_addr = "$PUB"
internal_addr = "$INT"
[storage]
backend = "postgres"
master_key = "$(printf '%064d' 7)"
key_cache_capacity = $1
[storage.postgres]
primary_url = "host=127.0.0.1 port=$PA user=postgres dbname=postgres"
allow_plaintext = true
replica_url = "host=127.0.0.1 port=$PB user=postgres dbname=postgres"
migrate_on_start = true
[audit]
path = "$WORK/pg-audit.jsonl"
[[tenants]]
id = "demo"
issuers = ["tessera-dev"]
audiences = ["tessera"]
[[tenants.keys]]
kid = "demo-hs256"
algorithms = ["HS256"]
secret = "$SECRET"
[tenants.signing_key]
kid = "demo-hs256"
algorithm = "HS256"
secret = "$SECRET"
EOF
  }
  # create_latency NAME CONFIG_ARGS...: 300 sequential key creations (a new content id each).
  create_latency() {
    local name=$1; shift
    local svc; svc=$("$BIN" "$@" token --tenant demo --scope keys:write --scope keys:read --ttl 600)
    python3 - "$name" "$INT" "$svc" <<'PY' | tee -a "$OUT/result.txt"
import http.client, json, sys, time, uuid
name, addr, token = sys.argv[1:4]
host, port = addr.split(":")
c = http.client.HTTPConnection(host, int(port))
lat = []
for i in range(300):
    body = json.dumps({"content_id": f"create-{uuid.uuid4()}", "tracks": ["SD", "HD"]})
    t = time.perf_counter()
    c.request("POST", "/v1/keys", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    lat.append((time.perf_counter() - t) * 1e3)
    assert r.status == 201, r.status
lat.sort()
print(f"{name:<30} key creation (2 keys), sequential: p50 {lat[149]:.2f} ms  p99 {lat[296]:.2f} ms")
PY
  }
  start_pg_tessera() { # KEY_CACHE_CAPACITY
    pg_config "$1" >"$WORK/pg.toml"
    TESSERA_LOG_LEVEL=warn taskset -c $SERVER_CPU "$BIN" --config "$WORK/pg.toml" serve >"$WORK/tessera.out" 2>"$WORK/tessera.err" &
    TESSERA_PID=$!
    pids+=($TESSERA_PID)
    wait_port $PUB
  }
  if [ "$SCENARIO" != wan ]; then
  # Embedded, same run: licences (warm cache) and key creation.
  start_tessera
  KIDS=$(python3 -c '
import base64, json, sys, uuid
keys = json.loads(sys.argv[1])["keys"]
print(json.dumps([base64.urlsafe_b64encode(uuid.UUID(k["kid"]).bytes).decode().rstrip("=") for k in keys]))' "$KEYS_JSON")
  echo "== embedded: /clearkey/license, warm cache ==" >&2
  E=$(run_wrk load-tests/clearkey.lua "http://$PUB/clearkey/license" KIDS="$KIDS")
  create_latency "embedded"
  stop_tessera
  # PostgreSQL, warm cache: the same content id, so the same tokens apply.
  start_pg_tessera 100000
  "$BIN" --config "$WORK/pg.toml" keys --server "http://$INT" create --content-id bench-movie --track SD --track HD --track AUDIO >/dev/null
  PG_KEYS=$("$BIN" --config "$WORK/pg.toml" keys --server "http://$INT" list --content-id bench-movie)
  PKIDS=$(python3 -c '
import base64, json, sys, uuid
keys = json.loads(sys.argv[1])["keys"]
print(json.dumps([base64.urlsafe_b64encode(uuid.UUID(k["kid"]).bytes).decode().rstrip("=") for k in keys]))' "$PG_KEYS")
  echo "== postgres (standby reads): /clearkey/license, warm cache ==" >&2
  W=$(run_wrk load-tests/clearkey.lua "http://$PUB/clearkey/license" KIDS="$PKIDS")
  create_latency "postgres (remote_apply)" --config "$WORK/pg.toml"
  stop_tessera
  # Cold cache: every licence reads the standby.
  start_pg_tessera 0
  echo "== postgres (standby reads): /clearkey/license, no key cache ==" >&2
  C=$(run_wrk load-tests/clearkey.lua "http://$PUB/clearkey/license" KIDS="$PKIDS")
  METRICS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_store_(replica_fallbacks_total|operation_duration_seconds_(sum|count)\{backend="postgres",op="get_keys")')
  stop_tessera
  report "postgres warm-cache licence" "$W" "embedded warm-cache licence" "$(rps_of "$E")" "none" "$METRICS"
  report "postgres cold-cache licence" "$C" "embedded warm-cache licence" "$(rps_of "$E")" "none" "$METRICS"
  fi

  if [ "$SCENARIO" = wan ] || [ "$SCENARIO" = all ]; then
    WAN_DELAY_MS=${WAN_DELAY_MS:-10}
    PX_REPL=127.0.0.1:15440; PX_B=127.0.0.1:15441
    echo 0 >"$WORK/delay_ms"
    for pair in "$PX_REPL" "$PX_B"; do
      target/release/examples/delay_proxy "$pair" "127.0.0.1:$PA" "$WORK/delay_ms" 2>>"$WORK/proxy-${pair#*:}.log" &
      pids+=($!)
      wait_port "$pair"
    done
    # The standby now streams through the link (primary_conninfo reloads: the walreceiver
    # reconnects).
    "${AS[@]}" "$PGBIN/psql" -qAt -h 127.0.0.1 -p $PB -U postgres -c \
      "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${PX_REPL#*:} user=postgres application_name=dc_b'" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 100); do grep -q accepted "$WORK/proxy-${PX_REPL#*:}.log" 2>/dev/null && break; sleep 0.1; done
    grep -q accepted "$WORK/proxy-${PX_REPL#*:}.log" || { echo "the standby did not reconnect through the link" >&2; exit 1; }
    for _ in $(seq 100); do
      [ "$("${AS[@]}" "$PGBIN/psql" -qAt -h 127.0.0.1 -p $PA -U postgres -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'dc_b'")" = quorum ] && break
      sleep 0.1
    done
    [ -s "$WORK/tokens.txt" ] || "$BIN" token --tenant demo --content-id bench-movie --ttl 3600 --count "$TOKENS" >"$WORK/tokens.txt"
    # pg_node NAME PRIMARY KEY_CACHE [REPLICA]: a config for node A (next to the primary) or B.
    pg_node() {
      pg_config "$3" | sed -e "s|^primary_url = .*|primary_url = \"host=127.0.0.1 port=${2#*:} user=postgres dbname=postgres\"|" \
        -e "s|^replica_url = .*|${4:+replica_url = \"host=127.0.0.1 port=${4#*:} user=postgres dbname=postgres\"}|" >"$WORK/$1.toml"
    }
    pg_node wan-a "127.0.0.1:$PA" 100000
    pg_node wan-b "$PX_B" 0 "127.0.0.1:$PB"
    start_node() { # start_node NAME
      TESSERA_LOG_LEVEL=warn taskset -c $SERVER_CPU "$BIN" --config "$WORK/$1.toml" serve >"$WORK/tessera.out" 2>"$WORK/tessera.err" &
      TESSERA_PID=$!
      pids+=($TESSERA_PID)
      wait_port $PUB
    }
    start_node wan-a
    "$BIN" --config "$WORK/wan-a.toml" keys --server "http://$INT" create --content-id bench-movie --track SD --track HD --track AUDIO >/dev/null
    WKEYS=$("$BIN" --config "$WORK/wan-a.toml" keys --server "http://$INT" list --content-id bench-movie)
    stop_tessera
    WKIDS=$(python3 -c '
import base64, json, sys, uuid
keys = json.loads(sys.argv[1])["keys"]
print(json.dumps([base64.urlsafe_b64encode(uuid.UUID(k["kid"]).bytes).decode().rstrip("=") for k in keys]))' "$WKEYS")
    # 0, delay, 0 again: the first phase runs right after the creations above (autovacuum,
    # cold pages), so the comparison uses the second 0 ms phase; both are printed.
    LIC=(); CRE=()
    for d in 0 "$WAN_DELAY_MS" 0; do
      echo "$d" >"$WORK/delay_ms"
      sleep 0.5
      start_node wan-a
      CRE+=("$(create_latency "wan, one-way $d ms, node A" --config "$WORK/wan-a.toml" | tail -1)")
      stop_tessera
      start_node wan-b
      # Warm-up (pools, the standby's buffers), discarded.
      DURATION=2 run_wrk load-tests/clearkey.lua "http://$PUB/clearkey/license" KIDS="$WKIDS" >/dev/null
      echo "== wan, one-way $d ms: /clearkey/license at node B, no key cache ==" >&2
      L=$(run_wrk load-tests/clearkey.lua "http://$PUB/clearkey/license" KIDS="$WKIDS")
      LIC+=("$L")
      FALLBACKS=$(curl -s "http://$INT/metrics" | grep -E '^tessera_store_replica_fallbacks_total' | tr '\n' ' ')
      stop_tessera
      echo "wan, one-way $d ms, node B licences: $L $FALLBACKS" | tee -a "$OUT/result.txt"
    done
    python3 - "$WAN_DELAY_MS" "${LIC[2]}" "${LIC[1]}" "${CRE[2]}" "${CRE[1]}" <<'PY' | tee -a "$OUT/result.txt"
import re, sys
d, l0, ld, c0, cd = sys.argv[1:6]
lic = lambda line: {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
cre = lambda line: [float(x) for x in re.findall(r"p(?:50|99) ([0-9.]+) ms", line)]
a, b = lic(l0), lic(ld)
(c0_50, c0_99), (cd_50, cd_99) = cre(c0), cre(cd)
rps = lambda r: r["requests"] / (r["duration_us"] / 1e6)
print(f"node B licences (local standby reads), one-way 0 ms: {rps(a):.0f}/s p50 {a['p50_us']} us p99 {a['p99_us']} us; {d} ms: {rps(b):.0f}/s p50 {b['p50_us']} us p99 {b['p99_us']} us")
print(f"  ratio {d} ms / 0 ms: licences/s {rps(b) / rps(a):.3f}, p99 {b['p99_us'] / a['p99_us']:.3f}")
print(f"node A key creation (remote_apply), one-way 0 ms: p50 {c0_50:.2f} ms p99 {c0_99:.2f} ms; {d} ms: p50 {cd_50:.2f} ms p99 {cd_99:.2f} ms")
print(f"  p50 added: {cd_50 - c0_50:.2f} ms (the round trip is {2 * int(d)} ms)")
if a["errors"] or b["errors"]:
    sys.exit("node B answered errors")
PY
    # Back to the direct stream for anything after.
    echo 0 >"$WORK/delay_ms"
  fi
fi
