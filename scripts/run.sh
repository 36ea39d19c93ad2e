#!/usr/bin/env bash
# The main job: set up (packages, the model), build, then a short real
# LS-LLaMA training run on SST-2 (last-token pooling, causal attention, LoRA
# r=12 alpha=32 dropout 0.1 on q,v), the best adapter chosen on the dev set,
# then its dev evaluation and predictions for a few sentences. Set STEPS for a
# longer run (one epoch of SST-2 at --batch-tokens 1024 is 838 steps).
#
#   MODEL   smollm2-135m (default: SmolLM2-135M-Instruct, Q4_1 GGUF), gemma3-270m (Gemma 3 270M, Q4_K_M GGUF,
#           fetched by setup.sh --gemma), or the path of any model lsllama loads
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models"
case "${MODEL:-smollm2-135m}" in
  smollm2-135m) "$ROOT/scripts/setup.sh"; MODEL="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"; NAME=smollm2 ;;
  gemma3-270m) "$ROOT/scripts/setup.sh" --gemma; MODEL="$MODELS/gemma-3-270m-q4_k_m.gguf"; NAME=gemma3 ;;
  *) "$ROOT/scripts/setup.sh"; NAME=model ;;
esac
BUILD="${BUILD:-$ROOT/build}"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
DATA="$ROOT/../shared/data/sst2"
OUT="${OUT:-$ROOT/runs/sst2-demo$([ "$NAME" = smollm2 ] || echo "-$NAME")}"
STEPS="${STEPS:-60}"
LSLLAMA="$BUILD/lsllama"

echo "== model"
"$LSLLAMA" inspect "$MODEL" --no-metadata --no-tensors | head -11
echo
echo "== training ($STEPS steps; output in $OUT)"
"$LSLLAMA" train "$MODEL" --train "$DATA/train.tsv" --dev "$DATA/dev.tsv" --out "$OUT" --overwrite \
  --pool last --mask causal --lora-r 12 --lora-alpha 32 --lora-dropout 0.1 --lora-targets q,v \
  --lr 5e-4 --warmup-ratio 0.1 --batch-tokens 1024 --max-steps "$STEPS" --eval-every "$STEPS" --seed 42
echo
echo "== dev evaluation of the best adapter"
"$LSLLAMA" eval "$MODEL" --adapter "$OUT/best" --data "$DATA/dev.tsv"
echo
echo "== predictions"
printf '%s\n' "a gripping , funny and moving film ." "the plot is a mess and the acting is worse ." |
  "$LSLLAMA" predict "$MODEL" --adapter "$OUT/best"
