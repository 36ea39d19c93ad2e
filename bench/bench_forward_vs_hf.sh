#!/usr/bin/env bash
# Forward throughput and peak RSS side by side: lsllama (bench_forward) and transformers
# (tools/hf_forward_bench.py), float32, on the same token ids packed into the same batches, each run alone, lsllama
# before and after transformers so a change in the machine's load shows as a gap between its two runs.
#
# Usage: [MODEL=FILE.gguf] [MASK=causal|bidirectional] [LIMIT=N] bench/bench_forward_vs_hf.sh [BUILD_DIR] [REPS]
#   MODEL default SmolLM2-135M from the model cache; MASK bidirectional needs a model whose transformers class
#   defines use_bidirectional_attention (Gemma 3). The ids are the first LIMIT (default all 872) SST-2 dev
#   sentences, encoded once by transformers' tokenizer (lsllama's is id-identical: tests/test_tokenizer_parity),
#   in batches of at most 2,048 real tokens; REPS passes each (default 3), the best one counted.
# Prints the CPU, each run's figures, then tokens/s and peak RSS per program and the ratio lsllama / transformers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
REPS="${2:-3}"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
MASK="${MASK:-causal}"
LIMIT="${LIMIT:-0}"
TSV="$ROOT/../shared/data/sst2/dev.tsv"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT

if [[ ! -x "$BUILD/bench_forward" ]]; then
  echo "error: $BUILD/bench_forward: not found (build it, or pass the build folder as the first argument)" >&2
  exit 2
fi
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), nproc $(nproc)"
python3 "$ROOT/tools/hf_forward_bench.py" --model "$M" --tsv "$TSV" --write-ids "$W/ids.txt" --limit "$LIMIT" \
  >/dev/null
ll() {
  "$BUILD/bench_forward" "$M" --ids "$W/ids.txt" --batch-tokens 2048 --reps "$REPS" --mask "$MASK" | tee "$W/ll.out"
  sed -n 's/^throughput *\([0-9.]*\) tokens\/s/\1/p' "$W/ll.out" >>"$W/ll.tps"
  sed -n 's/^peak RSS *\([0-9.]*\) MB/\1/p' "$W/ll.out" >>"$W/ll.rss"
}
echo "== lsllama"
ll
echo "== transformers"
python3 "$ROOT/tools/hf_forward_bench.py" --model "$M" --ids "$W/ids.txt" --batch-tokens 2048 --reps "$REPS" \
  --mask "$MASK" --threads "$(nproc)" | tee "$W/hf.out"
echo "== lsllama again"
ll
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
ll = [float(x) for x in open(f"{w}/ll.tps").read().split()]
rss = [float(x) for x in open(f"{w}/ll.rss").read().split()]
hf = json.loads(open(f"{w}/hf.out").read().strip().splitlines()[-1])
mean = sum(ll) / len(ll)
print(f"tokens/s: lsllama {mean:.0f} (before {ll[0]:.0f}, after {ll[1]:.0f}), transformers {hf['tokens_per_s']:.0f}"
      f" ({hf['padded_tokens'] - hf['tokens']} padding tokens not counted)")
print(f"peak RSS: lsllama {max(rss):.0f} MiB, transformers {hf['peak_rss_mb']} MiB")
print(f"ratio lsllama / transformers: {mean / hf['tokens_per_s']:.2f}x tokens/s, {max(rss) / hf['peak_rss_mb']:.2f}x "
      f"peak RSS")
PY
