#!/usr/bin/env bash
# Training tokens/s of two models side by side (issue 13: Gemma 3 270M beside SmolLM2-135M): `lsllama train` for
# STEPS steps of about 1,024 tokens on SST-2 (causal, last-token pooling) and on CoNLL-2003 (--task token,
# bidirectional), the models alternating within each task, ROUNDS rounds, so a drift of the machine's speed shows
# as a spread between rounds rather than as a gap between the models. Run it on an otherwise idle machine.
#
# Usage: [A=FILE] [B=FILE] [STEPS=8] [ROUNDS=2] bench/bench_train_models.sh [BUILD_DIR]
#   A default Gemma 3 270M, B default SmolLM2-135M, both from the model cache (scripts/setup.sh --gemma).
# Prints each run's tokens/s (log.jsonl's last line) and, per task, the mean of each model and the ratio A / B.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
CACHE="${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models"
A="${A:-$CACHE/gemma-3-270m-q4_k_m.gguf}"
B="${B:-$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf}"
STEPS="${STEPS:-8}"
ROUNDS="${ROUNDS:-2}"
D="$ROOT/../shared/data"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
for f in "$A" "$B"; do
  [[ -f "$f" ]] || { echo "error: $f: not found (scripts/setup.sh --gemma fetches both)" >&2; exit 2; }
done
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), nproc $(nproc)"
echo "A: $A"
echo "B: $B"
for round in $(seq 1 "$ROUNDS"); do
  for task in sst2 conll; do
    for side in A B; do
      model="${!side}"
      if [[ $task == sst2 ]]; then args=(--train "$D/sst2/train.tsv")
      else args=(--task token --train "$D/conll2003/train.txt" --mask bidirectional); fi
      rm -rf "$W/run"
      if ! "$BUILD/lsllama" train "$model" "${args[@]}" --out "$W/run" --batch-tokens 1024 --seed 42 \
        --stop-after-steps "$STEPS" --no-progress >"$W/out.txt" 2>&1; then
        echo "error: lsllama train ($side, $task) failed:" >&2
        tail -5 "$W/out.txt" >&2
        exit 1
      fi
      tps="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["tokens_per_s"])' "$(tail -1 "$W/run/log.jsonl")")"
      echo "round $round  $task  $side  $tps tokens/s"
      echo "$task $side $tps" >>"$W/all.txt"
    done
  done
done
python3 - "$W/all.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
for task in ("sst2", "conll"):
    m = {s: [float(t) for k, side, t in rows if k == task and side == s] for s in ("A", "B")}
    a, b = sum(m["A"]) / len(m["A"]), sum(m["B"]) / len(m["B"])
    print(f"{task}: A {a:.1f} tokens/s, B {b:.1f} tokens/s, A / B {a / b:.2f}x")
PY
