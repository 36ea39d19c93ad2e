#!/usr/bin/env bash
# Scale benchmark (issue 18): peak RSS, seconds per step and GFLOP/s of LoRA
# training on random-weight models in the exact shapes of LLaMA-2-7B and
# Llama-3.2-1B, against transformers + PEFT in float32 on the 1B shape, and
# SmolLM2-135M trained from its stored precision against f32.
#
# Usage: bench/bench_scale.sh [BUILD_DIR] [GROUP...]
#   GROUP: 7b (bench_train on LLaMA-2-7B Q4_K_M and Q8_0, `lsllama embed` on Q4_K_M),
#          1b (bench_train on Llama-3.2-1B Q4_K_M and Q8_0), hf (transformers + PEFT
#          on the 1B shape), smollm2 (--base-precision stored against f32); default all
#          four. tiny: the same on the tiny shape, a self-test of this script in seconds.
#   Environment: STEPS (timed steps after one warm-up, default 2), BATCH_TOKENS (512),
#   EMBED_SENTENCES (32), LSLLAMA_CACHE (~/.cache/lsllama), SMOLLM2 (the SmolLM2 GGUF),
#   LOG_DIR (where each run's output is kept; a new temporary folder by default).
#
# The synthetic models are written by bench/make_synthetic_gguf.py into
# $LSLLAMA_CACHE/synthetic/ (LLaMA-2-7B: 3.9 GB Q4_K_M, 7.2 GB Q8_0; 1B: 0.8 and
# 1.3 GB) and kept for later runs while the generator's version is unchanged.
# They hold no tokenizer: the 7B shape gets the Llama 2 tokenizer.model (32,000
# tokens), the 1B shape SmolLM2's (49,152 tokens, within its 128,256).
# Run it on an otherwise idle machine: OpenMP's spinning threads make every
# figure meaningless when another job shares the cores.
# Each run is measured alone, one after another, with /usr/bin/time -v (or a
# Python getrusage wrapper where GNU time is missing). On 2 cores a 7B step of
# 512 tokens takes minutes; the 1B rows of the current engine (which converts
# the base to f32 at load) take about 5-6 GB.
# The smollm2 group needs bench_train's --base-precision (the issue-18 build);
# without it the rows say so and are skipped.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
[ $# -gt 0 ] && shift
GROUPS_RUN="${*:-7b 1b hf smollm2}"
STEPS="${STEPS:-2}"
BT="${BATCH_TOKENS:-512}"
EMBED_SENTENCES="${EMBED_SENTENCES:-32}"
CACHE="${LSLLAMA_CACHE:-$HOME/.cache/lsllama}"
SYN="$CACHE/synthetic"
SMOLLM2="${SMOLLM2:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
TSV="$ROOT/../shared/data/sst2/train.tsv"
LLAMA2_TOK="$ROOT/../shared/models/llama2-tokenizer/tokenizer.model"
LOG_DIR="${LOG_DIR:-$(mktemp -d -t bench_scale.XXXXXX)}"
mkdir -p "$SYN" "$LOG_DIR"
want() { [[ " $GROUPS_RUN " == *" $1 "* ]]; }

for f in "$BUILD/bench_train" "$BUILD/lsllama"; do
  [ -x "$f" ] || { echo "bench_scale: $f not found (build first: cmake --build ${BUILD#$ROOT/})" >&2; exit 1; }
done

# synthetic SHAPE QUANT: the file's path, written first when missing or from another generator version
GEN_VERSION="$(python3 "$ROOT/bench/make_synthetic_gguf.py" --version) seed 0"
synthetic() {
  local f="$SYN/$1-$2.gguf"
  if [ ! -f "$f" ] || [ "$(cat "$f.version" 2>/dev/null)" != "$GEN_VERSION" ]; then
    rm -f "$f.version"
    python3 "$ROOT/bench/make_synthetic_gguf.py" --shape "$1" --quant "$2" --seed 0 --out "$f" >&2 || exit 1
    echo "$GEN_VERSION" >"$f.version"
  fi
  echo "$f"
}

# measure NAME CMD...: runs CMD with its output in $LOG_DIR/NAME.log; writes "peak_kb wall_s rc" to NAME.rss
measure() {
  local name="$1"; shift
  echo "[$(date +%H:%M:%S)] $name: $*" >&2
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$LOG_DIR/$name.time" "$@" >"$LOG_DIR/$name.log" 2>&1
    local rc=$?
    awk -v rc=$rc '/Maximum resident set size/ {kb=$NF} /Elapsed \(wall clock\)/ {n=split($NF,t,":"); s=0;
         for (i=1;i<=n;i++) s=s*60+t[i]} END {print kb, s, rc}' "$LOG_DIR/$name.time" >"$LOG_DIR/$name.rss"
  else
    python3 - "$LOG_DIR/$name" "$@" <<'PY'
import resource, subprocess, sys, time
out = sys.argv[1]
t = time.time()
with open(out + ".log", "w") as log:
    rc = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode
with open(out + ".rss", "w") as f:
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, round(time.time() - t, 2), rc, file=f)
PY
  fi
}

ROWS=()
FMT='%-36s %8s %9s %9s %9s %16s  %s'
gigabytes() { awk -v kb="$1" 'BEGIN {printf "%.2f", kb * 1024 / 1e9}'; }
verdict() { [ -n "$2" ] && awk -v g="$1" -v t="$2" 'BEGIN {print (g <= t ? ", target <= " t " GB: ok" : ", target <= " t " GB: OVER")}'; }
# row NAME LABEL TARGET_GB: one line of the table from bench_train's (or hf_scale_train's) output
row() {
  local name="$1" label="$2" target="${3:-}"
  read -r kb wall rc <"$LOG_DIR/$name.rss"
  local log="$LOG_DIR/$name.log"
  local gb; gb=$(gigabytes "$kb")
  if [ "$rc" != 0 ]; then
    ROWS+=("$(printf "$FMT" "$label" "$gb" "-" "-" "-" "-" "FAILED (rc $rc): $log")")
    return
  fi
  local tps sps gf gemm loss
  tps=$(sed -n 's/^throughput *\([0-9.]*\) training tokens\/s (\([0-9.]*\) s per step).*/\1/p' "$log")
  sps=$(sed -n 's/^throughput *\([0-9.]*\) training tokens\/s (\([0-9.]*\) s per step).*/\2/p' "$log")
  gf=$(sed -n 's/^achieved *\([0-9.]*\) GFLOP\/s.*/\1/p' "$log")
  gemm=$(sed -n 's/.*ll_gemm ([a-z0-9]*) \([0-9.]*\) GFLOP\/s.*sgemm \([0-9.]*\) GFLOP\/s.*/\1\/\2/p' "$log")
  loss=$(sed -n 's/^loss *\([^ ]*\) at the warm-up step, \([^ ]*\) at the last.*/\2/p' "$log")
  ROWS+=("$(printf "$FMT" "$label" "$gb" "${sps:--}" "${tps:--}" "${gf:--}" "${gemm:--}" \
    "loss ${loss:-?}$(verdict "$gb" "$target")")")
}

# embed_row NAME LABEL MODEL TOKENIZER TARGET_GB: forward-only `lsllama embed` of EMBED_SENTENCES sentences
embed_row() {
  local name="$1" label="$2" target="${5:-}"
  tail -n +2 "$TSV" | head -n "$EMBED_SENTENCES" | cut -f1 >"$LOG_DIR/embed_input.txt"
  measure "$name" "$BUILD/lsllama" embed "$3" --text --tokenizer "$4" --batch-tokens "$BT" --input "$LOG_DIR/embed_input.txt"
  read -r kb wall rc <"$LOG_DIR/$name.rss"
  local gb notes
  gb=$(gigabytes "$kb")
  if [ "$rc" = 0 ]; then
    notes="$(grep -c . "$LOG_DIR/$name.log") vectors in ${wall} s (load included)$(verdict "$gb" "$target")"
    : >"$LOG_DIR/$name.log" # the vectors are not needed
  else
    notes="FAILED (rc $rc): $LOG_DIR/$name.log"
  fi
  ROWS+=("$(printf "$FMT" "$label" "$gb" "-" "-" "-" "-" "$notes")")
}

{
  echo "cpu     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores," \
    "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "lsllama $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($BUILD), batches of <= $BT tokens," \
    "$STEPS timed steps after 1 warm-up; logs in $LOG_DIR"
} | tee "$LOG_DIR/header.txt"

if want 7b; then
  Q4="$(synthetic llama2-7b q4_k_m)" && Q8="$(synthetic llama2-7b q8_0)" || exit 1
  measure 7b_q4_k_m "$BUILD/bench_train" "$Q4" --tsv "$TSV" --tokenizer "$LLAMA2_TOK" --batch-tokens "$BT" --steps "$STEPS"
  row 7b_q4_k_m "LLaMA-2-7B Q4_K_M train" 7
  measure 7b_q8_0 "$BUILD/bench_train" "$Q8" --tsv "$TSV" --tokenizer "$LLAMA2_TOK" --batch-tokens "$BT" --steps "$STEPS"
  row 7b_q8_0 "LLaMA-2-7B Q8_0 train" 11
  embed_row 7b_q4_k_m_embed "LLaMA-2-7B Q4_K_M embed (fwd)" "$Q4" "$LLAMA2_TOK" 4.5
fi

if want tiny; then # a quick self-test of this script and the generator
  for q in q4_k_m q8_0; do
    f="$(synthetic tiny $q)" || exit 1
    measure "tiny_$q" "$BUILD/bench_train" "$f" --tsv "$TSV" --tokenizer "$LLAMA2_TOK" --batch-tokens "$BT" --steps "$STEPS"
    row "tiny_$q" "tiny $(echo $q | tr a-z A-Z) train (lsllama)"
  done
  embed_row tiny_q4_k_m_embed "tiny Q4_K_M embed (fwd)" "$(synthetic tiny q4_k_m)" "$LLAMA2_TOK"
  measure tiny_hf python3 "$ROOT/bench/hf_scale_train.py" --shape tiny --steps "$STEPS" --batch-tokens "$BT" \
    --tsv "$TSV" --tokenizer "$LLAMA2_TOK" --threads "$(nproc)"
  row tiny_hf "tiny f32 transformers+PEFT"
fi

if want 1b; then
  for q in q4_k_m q8_0; do
    f="$(synthetic llama3.2-1b $q)" || exit 1
    measure "1b_$q" "$BUILD/bench_train" "$f" --tsv "$TSV" --tokenizer "$SMOLLM2" --batch-tokens "$BT" --steps "$STEPS"
    row "1b_$q" "Llama-3.2-1B $(echo $q | tr a-z A-Z) train (lsllama)"
  done
fi

if want hf; then
  measure 1b_hf python3 "$ROOT/bench/hf_scale_train.py" --shape llama3.2-1b --steps "$STEPS" --batch-tokens "$BT" \
    --tsv "$TSV" --tokenizer "$SMOLLM2" --threads "$(nproc)"
  row 1b_hf "Llama-3.2-1B f32 transformers+PEFT"
fi

if want smollm2; then
  if "$BUILD/bench_train" 2>&1 | grep -q -- --base-precision; then
    for p in stored f32; do
      measure "smollm2_$p" "$BUILD/bench_train" "$SMOLLM2" --tsv "$TSV" --batch-tokens "$BT" --steps "$STEPS" \
        --base-precision "$p"
      row "smollm2_$p" "SmolLM2-135M Q4_1, base $p"
    done
  else
    ROWS+=("SmolLM2-135M stored vs f32: skipped, this bench_train has no --base-precision (needs the issue-18 build)")
  fi
fi

{
  echo
  printf "$FMT\n" "run" "peak GB" "s/step" "tokens/s" "GFLOP/s" "ll_gemm/sgemm" "notes"
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo "(GB = 10^9 bytes of peak RSS; GFLOP/s achieved in training against the same run's ll_gemm and OpenBLAS sgemm" \
    "on a ${BT}xFFNxdim linear layer)"
} | tee "$LOG_DIR/table.txt"
