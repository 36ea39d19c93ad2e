#!/usr/bin/env bash
# The paper's experiments (docs/RESULTS.md), each one `lsllama train` run with
# the dev set evaluated every EVAL_EVERY steps and the best adapter kept by
# dev metric. Usage:
#
#   scripts/experiments.sh [NAME ...]        (default: every experiment below)
#
# Environment: MODEL (default: the SmolLM2-135M-Instruct GGUF that setup.sh
# fetches), LSLLAMA (the binary), DATA (../shared/data), OUT (runs/exp),
# SST2_STEPS / SST2_EVAL (optimiser steps and evaluation interval for SST-2),
# CONLL_STEPS / CONLL_EVAL (the same for CoNLL-2003), JOBS (runs at once),
# THREADS (OMP_NUM_THREADS per run). Every run writes OUT/NAME/log.jsonl,
# OUT/NAME/best, OUT/NAME/wall_s (wall time of the whole run) and
# OUT/NAME.stdout.txt (beside the run folder: training writes into a new, empty folder).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
LSLLAMA="${LSLLAMA:-$ROOT/build/lsllama}"
DATA="${DATA:-$ROOT/../shared/data}"
OUT="${OUT:-$ROOT/runs/exp}"
SST2_STEPS="${SST2_STEPS:-120}"
SST2_EVAL="${SST2_EVAL:-40}"
CONLL_STEPS="${CONLL_STEPS:-300}"
CONLL_EVAL="${CONLL_EVAL:-100}"
JOBS="${JOBS:-1}"
THREADS="${THREADS:-$(nproc)}"

# LS-LLaMA's settings: LoRA r=12 alpha=32 dropout 0.1 on q,v; one learning
# rate, warm-up and token budget for every run so that only the named factor
# changes between rows.
COMMON=(--lr 5e-4 --warmup-ratio 0.06 --batch-tokens 1024 --seed 42 --no-progress)
SST2=(--train "$DATA/sst2/train.tsv" --dev "$DATA/sst2/dev.tsv" --max-steps "$SST2_STEPS" --eval-every "$SST2_EVAL")
CONLL=(--task token --train "$DATA/conll2003/train.txt" --dev "$DATA/conll2003/valid.txt" --max-steps "$CONLL_STEPS"
       --eval-every "$CONLL_EVAL")

declare -A ARGS=(
  # 2. attention mask and pooling on SST-2
  [sst2-causal-last]="--mask causal --pool last"
  [sst2-bidir-last]="--mask bidirectional --pool last"
  [sst2-bidir-mean]="--mask bidirectional --pool mean"
  [sst2-bidir-max]="--mask bidirectional --pool max"
  [sst2-bidir15-mean]="--bidirectional-from 15 --pool mean"
  # 3. LoRA rank on SST-2 (causal, last; r=12 is sst2-causal-last)
  [sst2-r4]="--mask causal --pool last --lora-r 4"
  [sst2-r32]="--mask causal --pool last --lora-r 32"
  [sst2-head-only]="--mask causal --pool last --head-only"
  # 1. NER on CoNLL-2003: LS-LLaMA (causal) against LS-unLLaMA (bidirectional); figures on test
  [conll-causal]="--mask causal"
  [conll-bidir]="--mask bidirectional"
)
ORDER=(conll-causal conll-bidir sst2-causal-last sst2-bidir-last sst2-bidir-mean sst2-bidir-max sst2-bidir15-mean
       sst2-r4 sst2-r32 sst2-head-only)

run_one() {
  local name="$1" dir="$OUT/$1" t0 t1
  rm -rf "$dir"
  mkdir -p "$dir"
  t0=$(date +%s.%N)
  local data=("${SST2[@]}")
  case "$name" in conll-*) data=("${CONLL[@]}") ;; esac
  # shellcheck disable=SC2086 # ARGS values are option lists
  OMP_NUM_THREADS="$THREADS" "$LSLLAMA" train "$MODEL" --out "$dir" "${COMMON[@]}" "${data[@]}" ${ARGS[$name]} \
    >"$dir.stdout.txt" 2>&1 || { echo "$name: failed (see $dir.stdout.txt)"; return 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$dir/wall_s"
  # CoNLL: the adapter chosen on dev, scored once on test
  case "$name" in conll-*)
    OMP_NUM_THREADS="$THREADS" "$LSLLAMA" eval "$MODEL" --adapter "$dir/best" --data "$DATA/conll2003/test.txt" \
      --json >"$dir/test.json" 2>>"$dir.stdout.txt" || { echo "$name: test evaluation failed"; return 1; } ;;
  esac
  echo "$name: done in $(cat "$dir/wall_s") s"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${ORDER[@]}")
for n in "${names[@]}"; do
  [ -n "${ARGS[$n]+x}" ] || { echo "unknown experiment '$n' (known: ${ORDER[*]})" >&2; exit 2; }
done
mkdir -p "$OUT"
status=0
running=0
for n in "${names[@]}"; do
  run_one "$n" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
