#!/usr/bin/env bash
# Training throughput side by side: lsllama and transformers + PEFT on the same
# first STEPS batches of an SST-2 epoch (LS-LLaMA settings), each run alone.
# lsllama runs before and after transformers, so that a change in the shared
# machine's load during the run shows, and the ratio uses their mean.
# Usage: bench/bench_train_vs_hf.sh [BUILD_DIR] [STEPS]   (prints the JSON lines and the ratio)
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
lsllama_run() {
  rm -rf "$W/ll"
  "$BUILD/lsllama" train "$M" --train "$D/train.tsv" --out "$W/ll" --pool last --mask causal --lora-r 12 \
    --lora-alpha 32 --lora-dropout 0.1 --lora-targets q,v --lr 5e-4 --warmup-ratio 0.06 --batch-tokens 1024 \
    --epochs 1 --seed 42 --stop-after-steps "$STEPS" --no-progress --dump-batches "$W/batches.txt" >/dev/null 2>&1
  tail -1 "$W/ll/log.jsonl"
}
tokens_per_s() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["tokens_per_s"])'; }
LL1="$(lsllama_run)"
echo "lsllama: $LL1"
TOTAL=838
HF="$(python3 "$ROOT/tools/hf_train_compare.py" --model "$M" --train "$D/train.tsv" --dev "$D/dev.tsv" \
  --batches "$W/batches.txt" --steps "$STEPS" --total-steps "$TOTAL" --threads "$(nproc)" 2>/dev/null | tail -1)"
echo "transformers + PEFT: $HF"
LL2="$(lsllama_run)"
echo "lsllama again: $LL2"
python3 - "$(tokens_per_s <<<"$LL1")" "$(tokens_per_s <<<"$HF")" "$(tokens_per_s <<<"$LL2")" <<'PY'
import sys
a, hf, b = map(float, sys.argv[1:])
print(f"ratio: lsllama {a:.1f} and {b:.1f} (mean {(a + b) / 2:.1f}) against transformers + PEFT {hf:.1f} "
      f"tokens/s: {(a + b) / 2 / hf:.2f}x")
PY
