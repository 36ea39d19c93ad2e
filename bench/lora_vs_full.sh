#!/usr/bin/env bash
# LoRA against full fine-tuning, and the LoRA rank sweep (issue 19), with SmolLM2-135M at one token budget: every run
# takes the same STEPS optimiser steps of 1,024-token batches, one after another, alone on the machine.
# SST-2 (TASK=sst2, the default): the main job's settings (last-token pooling, causal attention, warm-up 0.1), dev
# accuracy and macro-F1 of the final model. CoNLL-2003 (TASK=conll): `--task token` (bidirectional attention), dev and
# test entity F1 of the final model.
#   lora-r12-a32       the paper's setting (r 12, alpha 32, dropout 0.1 on q,v; lr 5e-4)
#   full-lrX           every linear weight trained in f32 at learning rate X (the head too; 2e-4 was the best of
#                      5e-5, 1e-4, 2e-4, 5e-4 on SST-2, docs/RESULTS.md section 4)
#   lora-rR-aA         the rank sweep: r 4, 12, 32, 64 with alpha 32 and with alpha 2r
# Prints per run and seed: the dev figures, training tokens/s and peak RSS (GNU time); then the mean and spread
# (min..max) of the first dev figure per configuration over the seeds. KEEP=DIR keeps each run's folder (log.jsonl
# for `lsllama plot`; the model folders of full runs are removed: 0.5 GB each).
#
# Usage: [TASK=sst2|conll] [RUNS="lora-r12-a32 full-lr5e-5 ..."] [SEEDS="42 43 44"] [KEEP=DIR] [EVAL_EVERY=N]
#        bench/lora_vs_full.sh [BUILD_DIR] [STEPS]
#   (BUILD_DIR default build, STEPS default 60, SEEDS default 42; RUNS default: all of the above for sst2, the
#    paper's LoRA and full-lr2e-4 for conll; EVAL_EVERY default STEPS: dev evaluations for the plots, the figures
#    printed are the last one's, the final model's)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
STEPS="${2:-60}"
EVAL_EVERY="${EVAL_EVERY:-$STEPS}"
SEEDS="${SEEDS:-42}"
TASK="${TASK:-sst2}"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
case "$TASK" in
  sst2) D="$ROOT/../shared/data/sst2"; DATA=(--train "$D/train.tsv" --dev "$D/dev.tsv" --pool last --mask causal)
        TEST=""; FIGS="dev_acc dev_f1"
        RUNS="${RUNS:-lora-r12-a32 full-lr2e-4 lora-r4-a32 lora-r32-a32 lora-r64-a32 lora-r4-a8 lora-r12-a24 lora-r32-a64 lora-r64-a128}" ;;
  conll) D="$ROOT/../shared/data/conll2003"; DATA=(--task token --train "$D/train.txt" --dev "$D/valid.txt")
         TEST="$D/test.txt"; FIGS="dev_f1 test_f1"; RUNS="${RUNS:-lora-r12-a32 full-lr2e-4}" ;;
  *) echo "error: TASK must be sst2 or conll" >&2; exit 2 ;;
esac
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
[[ -x "$BUILD/lsllama" ]] || { echo "error: $BUILD/lsllama: not found" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time (Debian's time) is needed for peak RSS" >&2; exit 2; }
if [[ -n "${KEEP:-}" ]]; then mkdir -p "$KEEP"; fi
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), nproc $(nproc)"
echo "model: $M; $TASK; $STEPS steps of <= 1024 tokens; seeds: $SEEDS"
read -r F1 F2 <<<"$FIGS"
printf '%-16s %5s %9s %9s %9s %9s\n' run seed "$F1" "$F2" tok_per_s rss_mb
declare -A first=()
for run in $RUNS; do
  case "$run" in
    full-lr*) opts=(--full --lr "${run#full-lr}") ;;
    lora-r*-a*) r="${run#lora-r}"; r="${r%-a*}"; a="${run##*-a}"
                opts=(--lora-r "$r" --lora-alpha "$a" --lora-dropout 0.1 --lora-targets q,v --lr 5e-4) ;;
    *) echo "error: unknown run '$run'" >&2; exit 2 ;;
  esac
  for seed in $SEEDS; do
    out="$W/$TASK-$run-$seed"
    if ! /usr/bin/time -f '%M' -o "$W/rss" "$BUILD/lsllama" train "$M" "${DATA[@]}" --out "$out" "${opts[@]}" \
        --warmup-ratio 0.1 --batch-tokens 1024 --max-steps "$STEPS" --eval-every "$EVAL_EVERY" --seed "$seed" \
        --no-progress >"$W/log" 2>&1; then
      echo "error: $run seed $seed failed:" >&2; tail -5 "$W/log" >&2; exit 1
    fi
    test_f1=""
    if [[ -n "$TEST" ]]; then
      if [[ "$run" == full-* ]]; then ev=("$out/final"); else ev=("$M" --adapter "$out/final"); fi
      "$BUILD/lsllama" eval "${ev[@]}" --data "$TEST" --json >"$W/test.json" 2>"$W/log" || {
        echo "error: eval of $run seed $seed failed:" >&2; tail -5 "$W/log" >&2; exit 1; }
      test_f1=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(f'{j[\"micro_f1\"]:.4f}')" "$W/test.json")
    fi
    line=$(python3 - "$out/log.jsonl" "$W/rss" "$TASK" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
dev = [r for r in rows if r.get("eval") == "dev"][-1]
tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r][-1]
rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
a, b = (dev["accuracy"], dev["macro_f1"]) if sys.argv[3] == "sst2" else (dev["f1"], 0)
print(f'{a:.4f} {b:.4f} {tps:.1f} {rss:.0f}')
EOF
)
    read -r a b tps rss <<<"$line"
    [[ -n "$test_f1" ]] && b="$test_f1"
    printf '%-16s %5s %9s %9s %9s %9s\n' "$run" "$seed" "$a" "$b" "$tps" "$rss"
    first[$run]+="$a "
    if [[ -n "${KEEP:-}" ]]; then
      rm -rf "$KEEP/$TASK-$run-$seed" && mkdir -p "$KEEP/$TASK-$run-$seed" && cp "$out/log.jsonl" "$KEEP/$TASK-$run-$seed/"
    fi
    rm -rf "$out"
  done
done
echo "mean $F1 (min..max over seeds):"
for run in $RUNS; do
  python3 -c "import sys; v=[float(x) for x in sys.argv[2:]]; print(f'  {sys.argv[1]:16s} {sum(v)/len(v):.4f} ({min(v):.4f}..{max(v):.4f}, {len(v)} seed(s))')" \
    "$run" ${first[$run]}
done
