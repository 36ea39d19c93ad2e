#!/usr/bin/env bash
# The Python package's overhead (issue 15): lsllama.pipeline over the 872 SST-2 dev sentences against
# `lsllama predict` on the same file, whole processes (start, model load, prediction, output), in alternating
# rounds: cli, python, python, cli per round. Both run the same machine code (the CLI built with the package).
# A head-only adapter trained for one step stands in for a trained one (prediction costs the same).
#
# Usage: [PYTHON=venv/bin/python] [MODEL=FILE.gguf] [ROUNDS=1] bench/python_overhead.sh
#   PYTHON: an interpreter with lsllama installed (pip install ./python); default python3
# Prints each run's seconds, the medians and python / cli (the issue's bound: at most 1.03).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
D="$ROOT/../shared/data/sst2"
ROUNDS="${ROUNDS:-1}"
CLI="$("$PY" -c 'import lsllama; print(lsllama.cli_path())')"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tail -n +2 "$D/dev.tsv" | cut -f1 > "$tmp/dev.txt"
"$CLI" train "$M" --train "$D/dev.tsv" --out "$tmp/run" --head-only --max-steps 1 --batch-tokens 256 --no-progress \
  >/dev/null 2>&1
cat > "$tmp/pipe.py" <<'PY'
import json, sys, lsllama
model, adapter, texts = sys.argv[1], sys.argv[2], [l.rstrip("\n") for l in open(sys.argv[3], encoding="utf-8")]
clf = lsllama.pipeline(model, adapter=adapter)
out = clf.predict(texts)
sys.stdout.write("".join(json.dumps({"label": r["label"], "p": ["%.6f" % p for p in r["probabilities"]]}) + "\n"
                         for r in out))
PY
run() { # name, command...: seconds of one whole-process run
  local t0 t1
  t0=$(date +%s.%N); "${@:2}" > "$tmp/$1.out"; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
cli_t=(); py_t=()
for r in $(seq "$ROUNDS"); do
  cli_t+=("$(run cli "$CLI" predict "$M" --adapter "$tmp/run/final" --input "$tmp/dev.txt" --no-progress)")
  py_t+=("$(run py "$PY" "$tmp/pipe.py" "$M" "$tmp/run/final" "$tmp/dev.txt")")
  py_t+=("$(run py "$PY" "$tmp/pipe.py" "$M" "$tmp/run/final" "$tmp/dev.txt")")
  cli_t+=("$(run cli "$CLI" predict "$M" --adapter "$tmp/run/final" --input "$tmp/dev.txt" --no-progress)")
done
[ "$(wc -l < "$tmp/cli.out")" = 872 ] && [ "$(wc -l < "$tmp/py.out")" = 872 ]
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
echo "cli    seconds: ${cli_t[*]}"
echo "python seconds: ${py_t[*]}"
c=$(median "${cli_t[@]}"); p=$(median "${py_t[@]}")
echo "median: cli $c s, python $p s, python / cli $(echo "scale=4; $p / $c" | bc)"
