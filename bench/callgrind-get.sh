#!/bin/bash
# Instructions per secret GET (or SET), counted by callgrind in the server process only: a
# load-independent A/B on a shared machine (docs/performance.md, "Secret GET: per-request work ..."
# and "Secret SET, session 12"). Usage:
#   bench/callgrind-get.sh [latchkey|floor|set] [requests]     (run `npm run build` first)
# The `secrets` scenario's server (bench/servers/secrets-server.ts, transpiled against dist/ as the
# bench does) under `valgrind --tool=callgrind --instr-atstart=no`; 2×N requests of warm-up
# (autocannon, 8 connections), then instrumentation on for exactly N. `set` PUTs a new version of
# one secret per request (1 KiB value), as the scenario's SET. Prints instructions per request.
# Keep N at 1000 or more: the warm-up must let the JIT settle (with N=500 the floor counted 919k
# instructions per GET, with 1000 510k–514k in three runs). About a minute per run.
set -euo pipefail
MODE=${1:-latchkey}; N=${2:-1000}; C=${C:-8}  # C: connections (1: a batch per SET)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/latchkey-callgrind-XXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$D"' EXIT  # KEEP=1: leave the callgrind output (callgrind_annotate)
node -e '
const ts = require(process.argv[1] + "/node_modules/typescript");
const fs = require("fs"); const { pathToFileURL } = require("url");
const script = process.argv[1] + "/bench/servers/secrets-server.ts";
const dist = pathToFileURL(process.argv[1] + "/dist").href;
fs.writeFileSync(process.argv[2], ts.transpileModule(fs.readFileSync(script, "utf8"), {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
  .replace(/([\x27"])\.\.\/\.\.\/src\//g, `$1${dist}/`)
  .replace(/import\.meta\.url/g, JSON.stringify(pathToFileURL(script).href)));
' "$ROOT" "$D/server.mjs"
ready() { for _ in $(seq 1 300); do grep -q '^{' "$1" 2>/dev/null && return 0; sleep 1; done; return 1; }
field() { node -e "console.log(JSON.parse(require('fs').readFileSync('$1','utf8').split('\n')[0]).$2)"; }
AC="$ROOT/node_modules/.bin/autocannon"
# The Latchkey server first in any case: it makes the data dir's TLS files (the floor uses them).
if [ "$MODE" = floor ]; then
  node --max-semi-space-size=4 "$D/server.mjs" latchkey "$D" 1024 > "$D/lk" 2>&1 & LK=$!
  ready "$D/lk"; kill $LK; wait $LK 2>/dev/null || true
  ARGS=(floor "$D" 1024 1)
else
  ARGS=(latchkey "$D" 1024)
fi
# What is counted: GET of the seeded secret, or (set) a PUT of a new version of another one.
METHOD=(); NAME=bench-secret
if [ "$MODE" = set ]; then
  NAME=bench-set
  V=$(printf 's%.0s' $(seq 1 1024))
  METHOD=(-m PUT -H 'content-type=application/json' -b "{\"value\":\"$V\"}")
fi
valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file --callgrind-out-file="$D/cg.out" \
  node --max-semi-space-size=4 "$D/server.mjs" "${ARGS[@]}" > "$D/out" 2> "$D/err" & PID=$!
ready "$D/out"
P=$(field "$D/out" port)
H="bench.vault.localhost:$P"; URL="https://127.0.0.1:$P/secrets/$NAME?api-version=7.5"
if [ "$MODE" = floor ]; then T=floor; else
  T=$(field "$D/out" token)
  V=$(printf 's%.0s' $(seq 1 1024))
  curl -sk -X PUT -H "host: $H" -H "authorization: Bearer $T" -H 'content-type: application/json' \
    -d "{\"value\":\"$V\"}" "${URL/$NAME/bench-secret}" -o /dev/null
fi
"$AC" -a $((2 * N)) -c "$C" -H "host=$H" -H "authorization=Bearer $T" "${METHOD[@]}" "$URL" > /dev/null 2>&1
callgrind_control -i on $PID > /dev/null 2>&1
"$AC" -a "$N" -c "$C" -H "host=$H" -H "authorization=Bearer $T" "${METHOD[@]}" "$URL" > "$D/meas" 2>&1
callgrind_control -i off $PID > /dev/null 2>&1
callgrind_control -d $PID > /dev/null 2>&1
sleep 1; kill $PID; wait $PID 2>/dev/null || true
if grep -q "non 2xx\|errors" "$D/meas"; then cat "$D/meas"; exit 1; fi
tot=0; for f in "$D"/cg.out*; do t=$(grep '^totals:' "$f" | tail -1 | awk '{print $2}'); tot=$((tot + ${t:-0})); done
echo "{\"mode\":\"$MODE\",\"requests\":$N,\"instructionsPerRequest\":$((tot / N))}"
