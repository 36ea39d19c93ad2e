#!/usr/bin/env bash
# The main job: set up (packages, default model), build, then inspect the
# default model and print pooled hidden states for a few sentences, causal
# (last-token pooling, as LS-LLaMA) and bidirectional (mean pooling, as
# LS-unLLaMA). Training replaces this once it lands.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
BUILD="${BUILD:-$ROOT/build}"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
MODEL="${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
LSLLAMA="$BUILD/lsllama"

echo "== lsllama inspect (tensor table omitted; drop --no-tensors to see it)"
"$LSLLAMA" inspect "$MODEL" --no-metadata --no-tensors

SENTENCES=$'it \'s a charming and often affecting journey .\nunflinchingly bleak and desperate\nthe acting , costumes , music , cinematography and sound are all astounding .'
echo
echo "== token ids (lsllama tokenize)"
printf '%s\n' "$SENTENCES" | "$LSLLAMA" tokenize "$MODEL"
for mode in "last causal" "mean bidirectional"; do
  set -- $mode
  echo
  echo "== pooled hidden states: --pool $1 --mask $2 (first 8 of 576 values, and the L2 norm)"
  printf '%s\n' "$SENTENCES" | "$LSLLAMA" embed "$MODEL" --text --pool "$1" --mask "$2" |
    awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i;
           printf "  ["; for (i = 1; i <= 8; i++) printf "%s%9.4f", (i > 1 ? "," : ""), $i;
           printf ", ...]  norm %.2f\n", sqrt(s) }'
done
