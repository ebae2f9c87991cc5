#!/usr/bin/env bash
# Try it in a browser: packages a generated clip with Shaka Packager against a RUNNING dev-mode
# Tessera (`cargo run --release -- serve` in another terminal), then serves a page that plays
# it in your browser with Shaka Player over W3C Clear Key, licences from Tessera, and prints
# its URL. Stop it with Ctrl-C.
#
#   tests/browser/demo.sh            (TESSERA_PUBLIC, TESSERA_INTERNAL, PORT to change addresses)
#
# Needs python3 with venv, Node.js with npm, and PyPI and npm access on first run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PUBLIC=${TESSERA_PUBLIC:-http://127.0.0.1:8080}
INTERNAL=${TESSERA_INTERNAL:-http://127.0.0.1:8081}
PORT=${PORT:-8090}
WORK=${WORK:-target/browser-demo}
CONTENT=demo-clip
mkdir -p "$WORK/media"
curl -sf "$INTERNAL/readyz" >/dev/null || { echo "no Tessera at $INTERNAL: run 'cargo run --release -- serve' first" >&2; exit 1; }
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/packager-requirements.txt
fi
(cd tests/browser && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error)
PY="$WORK/venv/bin/python"
PACKAGER=$("$PY" tests/interop/packager.py bins | python3 -c 'import json,sys; print(json.load(sys.stdin)["packager"])')
[ -f "$WORK/clip.mp4" ] || "$PY" tests/interop/packager.py clip --out "$WORK/clip.mp4" >/dev/null
OUT="$WORK/media/dash"
rm -rf "$OUT" && mkdir -p "$OUT"
# The dev `demo` tenant's public test signer (Shaka Packager's documented widevine_test values).
"$PACKAGER" \
  "in=$WORK/clip.mp4,stream=video,init_segment=$OUT/v_init.mp4,segment_template=$OUT/v_\$Number\$.m4s" \
  "in=$WORK/clip.mp4,stream=audio,init_segment=$OUT/a_init.mp4,segment_template=$OUT/a_\$Number\$.m4s" \
  --enable_widevine_encryption \
  --key_server_url "$INTERNAL/widevine/cenc/getcontentkey/demo" \
  --content_id "$(printf %s "$CONTENT" | od -An -tx1 | tr -d ' \n')" \
  --signer widevine_test \
  --aes_signing_key 1ae8ccd0e7985cc0b6203a55855a1034afc252980e970ca90e5202689f947ab9 \
  --aes_signing_iv d58ce954203b7c9a9a9d467f59839249 \
  --protection_scheme cenc --clear_lead 0 --segment_duration 2 \
  --generate_static_live_mpd --mpd_output "$OUT/manifest.mpd" 2>"$WORK/packager.log"
TOKEN=$(cargo run --release -q -- token --tenant demo --content-id "$CONTENT" --ttl 3600)
echo "packaged $CONTENT with keys from Tessera; open this in a browser (Chrome, Chromium, Firefox):"
echo
echo "  http://127.0.0.1:$PORT/page/player.html?kind=dash&manifest=/media/dash/manifest.mpd&license=$PUBLIC/clearkey/license&token=$TOKEN"
echo
PORT=$PORT exec node tests/browser/run.mjs --serve "$WORK/media"
