#!/bin/sh
# Tokens/s of lsllama's tokenizer and of the Hugging Face fast tokenizer, one
# thread each, on the SST-2 train sentences, in the same run; prints the ratio.
# usage: bench/bench_tokenizer.sh [BUILD_DIR] [PASSES]
set -e
BUILD=${1:-build}
PASSES=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SST2=${SST2:-$ROOT/../shared/data/sst2/train.tsv}
GGUF=${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA=${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/gemma-3-270m-q4_k_m.gguf
L2=$ROOT/$BUILD/generated/tokenizer/tok/llama2
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
run() { # label, lsllama tokenizer path, HF path
    C=$("$ROOT/$BUILD/bench_tokenizer" "$2" "$SST2" "$PASSES")
    echo "$C"
    P=$(python3 "$ROOT/bench/bench_tokenizer.py" "$3" "$SST2" "$PASSES")
    echo "$P"
    c=$(echo "$C" | sed -n 's/^lsllama best: \([0-9]*\).*/\1/p')
    b=$(echo "$P" | sed -n 's/^hf encode_batch best: \([0-9]*\).*/\1/p')
    e=$(echo "$P" | sed -n 's/^hf encode best: \([0-9]*\).*/\1/p')
    python3 -c "print('$1: lsllama %d tokens/s, HF encode_batch %d tokens/s (ratio %.2fx), HF encode %d tokens/s (ratio %.2fx)' % ($c, $b, $c/$b, $e, $c/$e))"
}
run "SmolLM2 (GGUF)" "$GGUF" "$GGUF"
# Gemma 3 (scripts/setup.sh --gemma): 262,144 pieces and 6,414 added tokens
if [ -f "$GEMMA" ]; then run "Gemma 3 (GGUF)" "$GEMMA" "$GEMMA"; fi
if [ -d "$L2" ]; then run "Llama 2 (tokenizer.json)" "$L2/tokenizer.json" "$L2"; fi
