#!/usr/bin/env bash
# kill -9 soak: a short real training run (stories260K, SST-2 rows, LoRA on all
# linear layers, --checkpoint-every 1, dev evaluation every 3 steps) is killed
# with SIGKILL at a random moment (KILLS times; a run that ends before its
# moment is not counted and is tried again), then continued with --resume (or started
# again, when the kill came before the first checkpoint); every finished run
# must end byte-identical to the run that was never killed: best/ and final/
# adapters, checkpoint/state.safetensors, and log.jsonl up to its timings.
# Not timed; prints one line per trial and a summary.
#
#   bench/soak_kill.sh [BUILD] [KILLS]     (defaults: build, 30)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
KILLS="${2:-30}"
LSLLAMA="$BUILD/lsllama"
M="$ROOT/../shared/models/stories260K"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
head -201 "$ROOT/../shared/data/sst2/train.tsv" >"$W/train.tsv"
head -41 "$ROOT/../shared/data/sst2/dev.tsv" >"$W/dev.tsv"
ARGS=("$M/stories260K.bin" --tokenizer "$M/tok512.bin" --train "$W/train.tsv" --dev "$W/dev.tsv"
      --max-steps 24 --batch-tokens 256 --eval-every 3 --checkpoint-every 1 --lora-targets all-linear
      --lr 2e-3 --seed 11 --no-progress)
FILES=(best/adapter_model.safetensors best/adapter_config.json best/label_map.json
       final/adapter_model.safetensors final/adapter_config.json final/label_map.json checkpoint/state.safetensors)
# the log without its timing figures
figures() { sed -E 's/"(tokens_per_s|elapsed_s)": [0-9.e+-]+/"\1": _/g' "$1"; }

t0=$(date +%s.%N)
"$LSLLAMA" train "${ARGS[@]}" --out "$W/ref" >/dev/null 2>&1
t1=$(date +%s.%N)
RUN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
echo "reference run: $RUN_S s"

kills=0 identical=0 restarts=0 i=0
while [ "$kills" -lt "$KILLS" ] && [ "$i" -lt $((3 * KILLS)) ]; do
  i=$((i + 1))
  out="$W/run$i"
  "$LSLLAMA" train "${ARGS[@]}" --out "$out" >/dev/null 2>&1 &
  pid=$!
  # a random moment within the run (the model loads in the first few percent)
  sleep "$(awk -v s="$RUN_S" -v r="$RANDOM" 'BEGIN { printf "%.3f", s * (0.02 + 0.96 * r / 32767) }')"
  kill -9 "$pid" 2>/dev/null || true
  st=0; wait "$pid" 2>/dev/null || st=$?
  if [ "$st" != 137 ]; then # 128 + SIGKILL: anything else ended on its own
    echo "trial $i: finished before its moment (status $st); not counted"; rm -rf "$out"; continue
  fi
  kills=$((kills + 1)); how="killed"
  if ! "$LSLLAMA" train "${ARGS[@]}" --out "$out" --resume >/dev/null 2>"$W/err"; then
    if grep -q "no checkpoint" "$W/err"; then # killed before the first checkpoint: start again
      restarts=$((restarts + 1))
      "$LSLLAMA" train "${ARGS[@]}" --out "$out" --overwrite >/dev/null 2>&1
    else
      echo "trial $i: resume failed: $(cat "$W/err")"; continue
    fi
  fi
  same=1
  for f in "${FILES[@]}"; do cmp -s "$W/ref/$f" "$out/$f" || { same=0; echo "trial $i: $f differs"; }; done
  cmp -s <(figures "$W/ref/log.jsonl") <(figures "$out/log.jsonl") || { same=0; echo "trial $i: log.jsonl differs"; }
  leftovers=$(find "$out" -name '*.tmp.*' -o -name '*.old.*' | wc -l)
  [ "$leftovers" = 0 ] || { same=0; echo "trial $i: $leftovers temporary files left"; }
  [ "$same" = 1 ] && identical=$((identical + 1))
  echo "trial $i: $how; $([ "$same" = 1 ] && echo "byte-identical" || echo "DIFFERS")"
  rm -rf "$out"
done
echo "soak: $kills runs killed by SIGKILL at random moments ($restarts before the first checkpoint), then resumed: $identical of $kills finished byte-identical to the uninterrupted run"
[ "$kills" = "$KILLS" ] && [ "$identical" = "$KILLS" ]
