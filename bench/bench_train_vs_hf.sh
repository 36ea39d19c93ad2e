#!/usr/bin/env bash
# Training throughput side by side: lsllama and transformers + PEFT on the same
# first STEPS batches of an SST-2 epoch (LS-LLaMA settings), each run alone.
# Usage: bench/bench_train_vs_hf.sh [BUILD_DIR] [STEPS]   (prints both JSON lines)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
STEPS="${2:-40}"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
D="$ROOT/../shared/data/sst2"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
# lsllama: the epoch's schedule (1 epoch = 838 steps at 1,024 tokens), stopped after STEPS steps;
# its batches are dumped so that transformers replays exactly these
"$BUILD/lsllama" train "$M" --train "$D/train.tsv" --out "$W/ll" --pool last --mask causal --lora-r 12 \
  --lora-alpha 32 --lora-dropout 0.1 --lora-targets q,v --lr 5e-4 --warmup-ratio 0.06 --batch-tokens 1024 \
  --epochs 1 --seed 42 --stop-after-steps "$STEPS" --no-progress --dump-batches "$W/batches.txt" >/dev/null 2>&1
echo "lsllama: $(tail -1 "$W/ll/log.jsonl")"
TOTAL=838
echo "transformers + PEFT: $(python3 "$ROOT/tools/hf_train_compare.py" --model "$M" --train "$D/train.tsv" \
  --dev "$D/dev.tsv" --batches "$W/batches.txt" --steps "$STEPS" --total-steps "$TOTAL" --threads "$(nproc)" 2>/dev/null |
  tail -1)"
