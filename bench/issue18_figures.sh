#!/bin/bash
# Issue 18's figures on one filled journal, in one run: every bench back to back, the load average beside
# each (bench/README.md "Issue 18's figures at 10 M, one run per backend").
#
#   bench/issue18_figures.sh URL KEYS_JSON OUT_DIR [PG_BASE]
#
# URL and KEYS_JSON from bench/journal_fill.py; PG_BASE, for a PostgreSQL journal, the folder of the
# server kept by `bench/servers.py postgres start PG_BASE` (the cold reads restart it). Each bench's
# output is also written to OUT_DIR.
set -u
URL=$1; KEYS=$2; OUT=$3; PGBASE=${4:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
cd "$ROOT"
export PYTHONPATH=$ROOT
mkdir -p "$OUT"
OLD=$("$PY" -c "import orjson,sys; print(orjson.loads(open(sys.argv[1],'rb').read())['keys']['order_id'][3])" "$KEYS")
stamp() { echo "== $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $*"; }
PGOPT=(); [ -n "$PGBASE" ] && PGOPT=(--pg-base "$PGBASE")
stamp journal_scale_bench
"$PY" bench/journal_scale_bench.py --url "$URL" --keys "$KEYS" --cold 5 "${PGOPT[@]}" 2>&1 | tee "$OUT/scale.txt"
stamp console_bench
"$PY" bench/console_bench.py --journal "$URL" --keys "$KEYS" --repeat 20 2>&1 | tee "$OUT/console.txt"
stamp replay_state_bench
"$PY" bench/replay_state_bench.py "$URL" --rounds 5 --count-rounds 3 2>&1 | tee "$OUT/replay_state.txt"
stamp "cli_bench (page cache warm)"
"$PY" bench/cli_bench.py --journal "$URL" --key "$OLD" --runs 5 2>&1 | tee "$OUT/cli_warm.txt"
stamp "cli_bench --evict"
"$PY" bench/cli_bench.py --journal "$URL" --key "$OLD" --runs 3 --evict "${PGOPT[@]}" 2>&1 | tee "$OUT/cli_cold.txt"
stamp end
