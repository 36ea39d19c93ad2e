#!/usr/bin/env bash
# Data-parallel training on one machine, side by side in one run: the same
# LS-LLaMA training (SmolLM2-135M, SST-2, --grad-accum 4) alone with every core
# in one OpenMP team, and under mpirun at W = 2 and 4 ranks sharing the cores.
# Prints the CPU, each run's training tokens/s (log.jsonl's last step), its
# peak RSS per rank, and whether the adapters are the same bytes.
#
#   bench/bench_mpi.sh [BUILD] [STEPS]     BUILD configured with -DLL_MPI=ON (default build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
STEPS="${2:-8}"
MODEL="${MODEL:-$HOME/.cache/lsllama/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
DATA="$ROOT/../shared/data/sst2"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OMP_NUM_THREADS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "mpi: $(mpirun --version 2>/dev/null | head -1)"
args=("$MODEL" --train "$DATA/train.tsv" --batch-tokens 1024 --grad-accum 4 --max-steps "$STEPS" --lr 5e-4
      --lora-targets q,v --seed 42 --no-progress)
run() { # LABEL NAME LAUNCHER...
  local label=$1 name=$2; shift 2
  /usr/bin/time -f "%M" -o "$tmp/$name.rss" "$@" "$BUILD/lsllama" train "${args[@]}" --out "$tmp/$name" \
    >/dev/null 2>"$tmp/$name.err" || { cat "$tmp/$name.err" >&2; exit 1; }
  local tps
  tps=$(tail -1 "$tmp/$name/log.jsonl" | sed 's/.*"tokens_per_s": \([0-9.]*\).*/\1/')
  printf "%-22s %8s training tokens/s   peak RSS %6d MB (mpirun: the largest process)\n" "$label" "$tps" \
    $(($(cat "$tmp/$name.rss") / 1024))
}
run "alone, $(nproc) threads" alone
run "mpirun -np 2" w2 mpirun --oversubscribe --bind-to none -np 2
run "mpirun -np 4" w4 mpirun --oversubscribe --bind-to none -np 4
first=""
for d in "$tmp"/*/final/adapter_model.safetensors; do
  h=$(sha256sum "$d" | cut -c1-16)
  [ -z "$first" ] && first=$h
  [ "$h" = "$first" ] || { echo "adapters differ: $d"; exit 1; }
done
echo "adapters: the same bytes in all three runs (sha256 $first...)"
