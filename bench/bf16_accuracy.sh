#!/usr/bin/env bash
# The accuracy cost of --compute bf16: the main job's LS-LLaMA run on SST-2
# (SmolLM2-135M-Instruct, last-token pooling, causal, LoRA r=12 alpha=32
# dropout 0.1 on q,v, lr 5e-4, warm-up 10%, 1,024-token batches, seed 42),
# STEPS steps (300) in f32 and in bf16, each evaluated on the dev set at its
# last step; prints both dev accuracies and their difference in points.
# Usage: bench/bf16_accuracy.sh [BUILD_DIR] [STEPS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
STEPS="${2:-300}"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
D="$ROOT/../shared/data/sst2"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
grep -m1 "model name" /proc/cpuinfo
for c in f32 bf16; do
  "$BUILD/lsllama" train "$M" --train "$D/train.tsv" --dev "$D/dev.tsv" --out "$W/$c" --pool last --mask causal \
    --lora-r 12 --lora-alpha 32 --lora-dropout 0.1 --lora-targets q,v --lr 5e-4 --warmup-ratio 0.1 \
    --batch-tokens 1024 --max-steps "$STEPS" --eval-every "$STEPS" --seed 42 --no-progress --compute "$c" >/dev/null 2>&1
  head -1 "$W/$c/log.jsonl"
  grep '"dev_accuracy"\|"eval"' "$W/$c/log.jsonl" | tail -1
  # the last step's training throughput line
  grep '"step": '"$STEPS"',' "$W/$c/log.jsonl" | head -1
done
python3 - "$W/f32/log.jsonl" "$W/bf16/log.jsonl" <<'PY'
import json, sys
def dev_acc(path):
    acc = None
    for line in open(path):
        r = json.loads(line)
        for k in ("dev_accuracy", "eval_accuracy", "accuracy"):
            if k in r: acc = r[k]
    return acc
a, b = dev_acc(sys.argv[1]), dev_acc(sys.argv[2])
print(f"dev accuracy at the last step: f32 {100*a:.2f}%, bf16 {100*b:.2f}%, difference {100*(b-a):+.2f} points")
PY
