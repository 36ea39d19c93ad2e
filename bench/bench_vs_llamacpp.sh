#!/usr/bin/env bash
# Forward throughput against llama.cpp on the same GGUF, the same token sequences in the same batches and the
# same thread count, side by side in one run (issue 17: lsllama at least 2x).
#
# Usage: bench/bench_vs_llamacpp.sh [BUILD_DIR]      (default: build)
#   MODEL=FILE.gguf  the model both engines run (default: SmolLM2-135M-Instruct.Q4_1, from scripts/setup.sh)
#   TSV=FILE         the texts: first column of a TSV with a header (default: ../shared/data/sst2/dev.tsv)
#   BATCH=N          tokens per batch (default 2048, bench_forward's default)
#   REPS=R           rounds: one pass over the texts per engine each (default 4)
#   UBATCH=U         llama.cpp's physical batch, n_ubatch (default 512, its own default)
#   COMPUTE=bf16     lsllama's frozen-weight products in bf16 (bench_forward --compute; default f32)
#   LLAMACPP_AMX=off llama.cpp without its AMX kernels (built apart, in ~/.cache/lsllama/llama.cpp/build-noamx):
#                    the figure of a CPU with AVX-512 but no AMX
# Prints the machine (bench_forward's lines: CPU, instruction sets, threads, lsllama's kernels; llama.cpp's
# system info: the instruction sets its CPU backend was built with, and how it was built), each engine's best
# pass in full, two reference figures from llama.cpp's own benchmark tools, tokens/s of each round, and last
#   ratio: lsllama A against llama.cpp B tokens/s (best passes) ...: R.RRx (rounds' median R.RRx)
#
# llama.cpp is the copy vendored in the llama-cpp-python sdist (a pinned version, sha256-checked), fetched with
# pip into ~/.cache/lsllama/llama.cpp and built there (Release, -march=native, OpenMP, no HTTPS client, only the
# targets used, -j2); a second run reuses the build. Nothing of it enters this repository.
#
# AMX: on a CPU with AMX, -march=native gives llama.cpp its AMX int8 kernels for the quantized products (Q4_0,
# Q4_1, Q8_0, K-quants; activations quantized to int8), its fastest path there. They fill their tile
# configuration in a local struct and load it with _tile_loadconfig, whose GCC 12 version (Debian 12's compiler)
# tells the compiler that only 8 bytes are read: GCC drops the other stores and the first tile load dies with
# SIGILL (llama-bench as much as our client). A probe built the same way finds out; -fno-dse (no RTL dead-store
# elimination) keeps the stores, so the build gets -fno-dse where the probe needs it, and no AMX
# (-mno-amx-*) only where even that fails; the output says which.
#
# What is compared, and why this is fair:
# - The same token sequences: the texts are tokenized once (lsllama tokenize; the GGUF's own tokenizer) into one
#   id file that both engines read. The same batches: bench/llamacpp_forward.c, a small libllama client built
#   here, cuts them as bench_forward does (consecutive sentences while the batch stays <= BATCH tokens) and runs
#   one llama_decode per batch, each sentence its own sequence from position 0, the KV cache emptied before each
#   batch. llama.cpp's tools cannot run this: llama-embedding and llama-retrieval take texts, but embeddings mode
#   puts every token through the LM head (+27% work on SmolLM2-135M), llama-perplexity scores every token too,
#   and llama-bench and llama-batched-bench only run synthetic prompts.
# - The same result: lsllama's forward computes every token's final hidden state (mean pooling and NER need them
#   all). llama.cpp is asked for the logits of each sentence's last token: what a last-token classifier needs and
#   the least llama_decode computes to give anything. It costs llama.cpp one LM-head row per sentence (about 1%
#   of its work at ~24 tokens a sentence) and saves it the last layer's attention output and FFN for every other
#   token (about 3%: it drops rows nobody reads before them), so llama.cpp does slightly less work than lsllama.
# - Threads: nproc for both (OMP_NUM_THREADS for lsllama; llama.cpp's n_threads and n_threads_batch, its -t).
# - llama.cpp's settings: its defaults (n_ubatch 512; flash attention as it chooses, on for the CPU; f16 KV
#   cache; the model memory-mapped) and one KV stream shared by the batch's sentences (kv_unified). Measured on
#   SST-2 dev, 2,048-token batches, 2 threads, AMX build, one pass each against 1,612 tokens/s at n_ubatch 512:
#   n_ubatch 256 1,685 (+4%), 1024 1,564, 2048 1,467; a KV stream per sentence 1,215 (llama.cpp then splits a
#   batch of unequal lengths into one piece per distinct length); no output at all instead of the last token's
#   logits: within 3% (AVX-512 build).
# - The machine is shared: the engines run in rounds of one pass each, the order alternating, so that a change
#   in load falls on both; the ratio is that of the best passes, beside the median of the rounds' ratios.
# - References, from llama.cpp's own tools (random tokens; same threads, batch size and settings):
#   llama-batched-bench with as many sequences of the texts' mean length as fit in BATCH (nearly the same shape);
#   llama-bench -p BATCH, one sequence of BATCH tokens (its usual "pp" figure; its long causal attention is more
#   work per token than short sentences, so it is not the comparison).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
CACHE="${LSLLAMA_CACHE:-$HOME/.cache/lsllama}"
M="${MODEL:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
TSV="${TSV:-$ROOT/../shared/data/sst2/dev.tsv}"
BATCH="${BATCH:-2048}"
REPS="${REPS:-4}"
UBATCH="${UBATCH:-512}"
AMX="${LLAMACPP_AMX:-on}"
THREADS="$(nproc)"
# The pinned llama-cpp-python sdist; its vendor/llama.cpp is the llama.cpp measured.
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LC="$CACHE/llama.cpp"
SDIST="$LC/llama_cpp_python-$VERSION.tar.gz"
SRC="$LC/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
LB="$LC/build"
if [ "$AMX" = off ]; then LB="$LC/build-noamx"; fi
for f in "$BUILD/bench_forward" "$BUILD/lsllama" "$M" "$TSV"; do
  [ -e "$f" ] || { echo "bench_vs_llamacpp: $f not found" >&2; exit 1; }
done
TSV="$(realpath "$TSV")"

# ---- fetch, unpack and build llama.cpp (each step skipped when done) ----
mkdir -p "$LC"
if [ ! -f "$SDIST" ]; then
  echo "fetching llama-cpp-python $VERSION (sdist) into $LC ..." >&2
  # --no-binary: the source distribution, which vendors llama.cpp; pip prepares its metadata, which builds
  # nothing of llama.cpp
  pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$LC" >&2
fi
echo "$SHA256  $SDIST" | sha256sum --check --quiet - ||
  { echo "bench_vs_llamacpp: $SDIST is not the pinned sdist (sha256)" >&2; exit 1; }
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  mkdir -p "$LC/src"
  tar -xzf "$SDIST" -C "$LC/src" "llama_cpp_python-$VERSION/vendor/llama.cpp"
fi
# The AMX probe (see the header): 0 when a tile configuration filled field by field reaches the CPU whole.
CC="${CC:-cc}"
amx_probe() {
  cat >"$LC/amx_probe.c" <<'C'
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} cfg_t;
int main(void) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) return 2;
    _Alignas(64) cfg_t in = {0}, out = {0};
    in.palette = 1, in.rows[0] = 8, in.colsb[0] = 64; /* the stores GCC 12 drops */
    _tile_loadconfig(&in);
    _tile_storeconfig(&out);
    _tile_release();
    return !(out.rows[0] == 8 && out.colsb[0] == 64);
}
C
  { "$CC" -O2 -march=native "$@" "$LC/amx_probe.c" -o "$LC/amx_probe" && "$LC/amx_probe"; } 2>/dev/null
}
FLAGS=""
AMX_NOTE="the CPU has no AMX"
if [ "$AMX" = off ]; then
  FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  AMX_NOTE="AMX kernels left out (LLAMACPP_AMX=off)"
elif grep -qw amx_int8 /proc/cpuinfo; then
  if amx_probe; then
    AMX_NOTE="AMX int8 kernels"
  elif amx_probe -fno-dse; then
    FLAGS="-fno-dse"
    AMX_NOTE="AMX int8 kernels; -fno-dse, as $CC drops the stores to their tile configuration (see the header)"
  else
    FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    AMX_NOTE="no AMX: $CC miscompiles the AMX tile configuration (see the header)"
  fi
fi
# A build of another version or other flags (or a half-finished one) is started over: the stamp is written last.
STAMP="$VERSION $CC flags: $FLAGS"
if [ "$(cat "$LB/lsllama-stamp" 2>/dev/null)" != "$STAMP" ]; then
  echo "building llama.cpp from llama-cpp-python $VERSION in $LB (minutes on 2 cores) ..." >&2
  rm -rf "$LB"
  cmake -S "$SRC" -B "$LB" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
    -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON -DBUILD_SHARED_LIBS=ON >"$LB.log" 2>&1 ||
    { tail -30 "$LB.log" >&2; exit 1; }
  cmake --build "$LB" -j2 --target llama llama-bench llama-batched-bench >>"$LB.log" 2>&1 ||
    { tail -30 "$LB.log" >&2; exit 1; }
  echo "$STAMP" >"$LB/lsllama-stamp"
fi
# The libllama client: rebuilt whenever its source changes (a second's work).
DRIVER="$LB/llamacpp_forward"
if [ ! -x "$DRIVER" ] || [ "$ROOT/bench/llamacpp_forward.c" -nt "$DRIVER" ] || [ "$ROOT/bench/bench_ids.h" -nt "$DRIVER" ]; then
  "$CC" -O2 -std=gnu11 -Wall -Wextra -I"$SRC/include" -I"$SRC/ggml/include" "$ROOT/bench/llamacpp_forward.c" \
    -o "$DRIVER" -L"$LB/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$LB/bin"
fi

# ---- the texts, tokenized once for both ----
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
tail -n +2 "$TSV" | cut -f1 | "$BUILD/lsllama" tokenize "$M" >"$W/ids.txt"
read -r N_SEQ N_TOK < <(awk '{n += NF} END {print NR, n}' "$W/ids.txt")
MEAN_LEN=$(( (N_TOK + N_SEQ / 2) / N_SEQ ))
echo "texts            $TSV: $N_SEQ sentences, $N_TOK tokens (lsllama tokenize, the GGUF's tokenizer), mean $MEAN_LEN"
echo "llama.cpp        llama-cpp-python $VERSION sdist's vendor/llama.cpp, built in $LB"
echo "                 with $CC -march=native $FLAGS: $AMX_NOTE"
echo "threads          $THREADS (nproc) for both; batches of <= $BATCH tokens; $REPS rounds of one pass each"
echo

# Rounds of one pass per engine, the order alternating (lsllama first in odd rounds), so that a change in the
# shared machine's load falls on both: the ratio of the best passes, and each round's own ratio.
throughput() { sed -n 's/^throughput *\([0-9.]*\) tokens\/s.*/\1/p' "$1"; }
lsllama_pass() {
  OMP_NUM_THREADS="$THREADS" "$BUILD/bench_forward" "$M" --ids "$W/ids.txt" --batch-tokens "$BATCH" --reps 1 \
    --compute "${COMPUTE:-f32}" >"$W/ll$1.txt"
}
llamacpp_pass() {
  "$DRIVER" "$M" --ids "$W/ids.txt" --batch-tokens "$BATCH" --reps 1 --threads "$THREADS" --ubatch "$UBATCH" \
    >"$W/lc$1.txt"
}
for r in $(seq "$REPS"); do
  if [ $((r % 2)) = 1 ]; then lsllama_pass "$r"; llamacpp_pass "$r"; else llamacpp_pass "$r"; lsllama_pass "$r"; fi
done
LL=() LCPP=()
for r in $(seq "$REPS"); do LL+=("$(throughput "$W/ll$r.txt")"); LCPP+=("$(throughput "$W/lc$r.txt")"); done
# the round of an engine's best pass: best_round FIGURE...
best_round() {
  local i=0 b=0 r=1
  for x in "$@"; do
    i=$((i + 1))
    if (( ${x%.*} > b )); then b=${x%.*} r=$i; fi
  done
  echo "$r"
}
R_LL=$(best_round "${LL[@]}")
R_LC=$(best_round "${LCPP[@]}")
echo "== lsllama, best pass (round $R_LL): bench_forward MODEL --ids (the same ids) --batch-tokens $BATCH --reps 1" \
  "--compute ${COMPUTE:-f32}"
cat "$W/ll$R_LL.txt"
echo
echo "== llama.cpp, best pass (round $R_LC): llamacpp_forward MODEL --ids (the same ids) --batch-tokens $BATCH" \
  "--reps 1 --threads $THREADS --ubatch $UBATCH"
cat "$W/lc$R_LC.txt"
echo

# References on random tokens. batched-bench: NPL sequences of the mean length, REPS times (one line each).
NPL=$(( BATCH / MEAN_LEN > 256 ? 256 : BATCH / MEAN_LEN )) # llama.cpp takes at most 256 sequences
NPL_LIST="$(printf "$NPL%.0s," $(seq "$REPS"))"
"$LB/bin/llama-batched-bench" -m "$M" -c "$BATCH" -b "$BATCH" -ub "$UBATCH" -npp "$MEAN_LEN" -ntg 0 \
  -npl "${NPL_LIST%,}" -kvu -t "$THREADS" -tb "$THREADS" --output-format jsonl >"$W/bb.txt" 2>"$W/bb.err" ||
  { tail -20 "$W/bb.err" >&2; exit 1; }
# (a regex, not json: with -ntg 0 its generation speeds are written as nan, which JSON has not)
BB=$(python3 -c 'import re, sys
print(round(max(map(float, re.findall(r"\"speed_pp\": *([0-9.]+)", open(sys.argv[1]).read())))))' "$W/bb.txt")
"$LB/bin/llama-bench" -m "$M" -p "$BATCH" -n 0 -b "$BATCH" -ub "$UBATCH" -t "$THREADS" -r "$REPS" -o json \
  >"$W/lb.json" 2>"$W/lb.err" || { tail -20 "$W/lb.err" >&2; exit 1; }
LBENCH=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))[0]["avg_ts"]))' "$W/lb.json")
echo "== llama.cpp's own tools (random tokens; the same threads, batch size and n_ubatch; references only)"
echo "llama-batched-bench  $NPL sequences x $MEAN_LEN tokens per batch (-kvu, best of $REPS): $BB tokens/s"
echo "llama-bench          pp$BATCH, one sequence of $BATCH tokens (mean of $REPS): $LBENCH tokens/s"
echo

python3 - "${LL[*]}" "${LCPP[*]}" "$BB" "$LBENCH" <<'PY'
import statistics, sys
ll, lc = ([float(x) for x in a.split()] for a in sys.argv[1:3])
bb, lb = map(float, sys.argv[3:])
for r, (a, b) in enumerate(zip(ll, lc), 1):
    print(f"round {r}: lsllama {a:.0f}, llama.cpp {b:.0f} tokens/s: {a / b:.2f}x")
rounds = [a / b for a, b in zip(ll, lc)]
print(f"against the references (best lsllama pass): {max(ll) / bb:.2f}x llama-batched-bench, "
      f"{max(ll) / lb:.2f}x llama-bench pp")
print(f"ratio: lsllama {max(ll):.0f} against llama.cpp {max(lc):.0f} tokens/s (best passes) on the same sequences "
      f"and batches: {max(ll) / max(lc):.2f}x (rounds' median {statistics.median(rounds):.2f}x)")
PY
