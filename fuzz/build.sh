#!/bin/sh
# Build the libFuzzer targets (clang, ASan+UBSan) into build-fuzz/ and make the
# seed corpora. Run from the repository root:  sh fuzz/build.sh [REAL.gguf]
#
# clang here has no libomp; if `apt-get install libomp-14-dev` is not an
# option, this points CMake's OpenMP at GCC's libgomp, with a copy of GCC's
# omp.h minus the GCC-only __malloc__(dealloc) attributes clang rejects.
set -eu
B=${LL_FUZZ_BUILD:-build-fuzz}
case $B in /*) ;; *) B=$PWD/$B ;; esac
mkdir -p "$B/omp-include" fuzz/corpus_gguf fuzz/corpus_safetensors
if echo 'int main(void){return 0;}' | clang -fopenmp -x c - -o /dev/null 2>/dev/null; then
    CC=clang cmake -S . -B "$B" -DLL_FUZZ=ON -DLL_SANITIZE=ON -DLL_NATIVE=ON > "$B/configure.log"
else
    GCC_OMP_DIR=$(dirname "$(gcc -print-file-name=include/omp.h)")
    sed -E 's/__malloc__ \([^)]*\)/__malloc__/g' "$GCC_OMP_DIR/omp.h" > "$B/omp-include/omp.h"
    CC=clang cmake -S . -B "$B" -DLL_FUZZ=ON -DLL_SANITIZE=ON -DLL_NATIVE=ON \
        "-DOpenMP_C_FLAGS=-fopenmp=libgomp -I$B/omp-include" -DOpenMP_C_LIB_NAMES=gomp \
        "-DOpenMP_gomp_LIBRARY=$(gcc -print-file-name=libgomp.so)" > "$B/configure.log"
fi
cmake --build "$B" -j2 --target fuzz_gguf fuzz_safetensors fuzz_data fuzz_token_data fuzz_make_corpus
REAL=${1:-$HOME/.cache/lsllama/models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -f "$REAL" ]; then
    "$B/fuzz_make_corpus" fuzz/corpus_gguf fuzz/corpus_safetensors "$REAL"
else
    "$B/fuzz_make_corpus" fuzz/corpus_gguf fuzz/corpus_safetensors
fi
# fuzz_data seeds: each data fixture behind a few option bytes (octal: dash's printf has no \x)
mkdir -p fuzz/corpus_data
for f in tests/fixtures/data/*.csv tests/fixtures/data/*.tsv tests/fixtures/data/*.jsonl; do
    for b in 000 001 002 101 102 105 114 204 301; do
        { printf "\\$b"; cat "$f"; } > "fuzz/corpus_data/$(basename "$f")_$b"
    done
done
# fuzz_token_data seeds: two option bytes (format/flags, max length/window options), then data
mkdir -p fuzz/corpus_token_data
CONLL=../shared/data/conll2003/train.txt
if [ -f "$CONLL" ]; then
    for b in '000 003' '004 017' '030 042' '000 377'; do
        set -- $b
        { printf "\\$1\\$2"; head -n 60 "$CONLL"; } > "fuzz/corpus_token_data/conll_$1_$2"
    done
fi
J='{"tokens": ["EU", "rejects", "German", ""], "ner_tags": ["B-ORG", "O", "B-MISC", "O"]}'
{ printf '\001\007'; echo "$J"; echo '{"tokens": ["Peter", "Blackburn"], "ner_tags": [1, 2]}'; } > fuzz/corpus_token_data/jsonl_1
{ printf '\101\023'; echo '{"tokens": ["a", "b"], "ner_tags": [1, 2]}'; } > fuzz/corpus_token_data/jsonl_ids
{ printf '\002\004'; printf '  Peter Blackburn\tvisited   Br\303\274ssel.\r\n\n \nZ\303\274rich'; } > fuzz/corpus_token_data/lines_1
echo "built $B/fuzz_gguf $B/fuzz_safetensors $B/fuzz_data $B/fuzz_token_data; corpora in fuzz/corpus_gguf fuzz/corpus_safetensors fuzz/corpus_data fuzz/corpus_token_data"
