#!/usr/bin/env bash
# Training throughput side by side (issue 17): lsllama and transformers + PEFT on the same first STEPS batches of
# an SST-2 epoch (LS-LLaMA settings, 1,024-token batches), each run alone, in up to four modes:
#   ll-f32   lsllama train (f32 products)
#   ll-bf16  lsllama train --compute bf16
#   hf-f32   transformers + PEFT, f32 (tools/hf_train_compare.py)
#   hf-bf16  transformers + PEFT under torch.autocast("cpu", bfloat16): what Trainer's bf16=True does on a CPU
#            (master weights, gradients and AdamW stay f32; tools/hf_train_compare.py --bf16-autocast)
# By default every mode the machine supports runs: ll-bf16 needs `lsllama train --help` to list --compute and the
# CPU to have avx512_bf16; hf-bf16 needs avx512_bf16 too (without it torch emulates bf16 products through f32, a
# figure nobody would train with). A skipped mode says why. MODES=a,b,... runs exactly those (an unavailable
# --compute is then an error).
# The lsllama modes run before and after the transformers ones (ll-f32 ll-bf16 hf-f32 hf-bf16 ll-bf16 ll-f32), so a
# change in the shared machine's load shows as a gap between a mode's two runs, and each lsllama mode's mean is
# centred on the same moment as the transformers runs.
#
# Usage: [MODES=ll-f32,ll-bf16,hf-f32,hf-bf16] [MODEL=FILE.gguf] bench/bench_train_vs_hf.sh [BUILD_DIR] [STEPS]
#   (BUILD_DIR default build, STEPS default 40; LSLLAMA_GEMM=avx2|c|blas forces lsllama's kernel as usual)
# Prints: the CPU model, its relevant flags and nproc; torch's version, CPU capability and threads; which modes run
# and why any is skipped; each run's JSON line (lsllama: the kernels, and the CPU where it names one, from
# log.jsonl's first line, then its last line; transformers: its last line, with the precision and the matrix
# kernels torch dispatched to); then tokens/s and peak RSS per mode, and the ratios lsllama f32 / HF f32, lsllama bf16 / HF f32,
# lsllama bf16 / HF bf16-autocast (and HF bf16-autocast / HF f32, lsllama bf16 / lsllama f32).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
STEPS="${2:-40}"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
D="$ROOT/../shared/data/sst2"
TOTAL=838   # the epoch's schedule length at 1,024 tokens: transformers' warm-up and decay must match lsllama's
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT

if [[ ! -x "$BUILD/lsllama" ]]; then
  echo "error: $BUILD/lsllama: not found (build it, or pass the build folder as the first argument)" >&2
  exit 2
fi

# ---- the machine
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has_flag() { [[ "$flags" == *" $1 "* ]]; }
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
present=""
for f in avx2 fma avx512f avx512_bf16 amx_bf16; do
  if has_flag "$f"; then present+=" $f"; else present+=" (no $f)"; fi
done
echo "flags:$present"
echo "nproc: $(nproc)"
echo "torch: $(python3 -c 'import torch; print(torch.__version__, "cpu_capability",
  torch.backends.cpu.get_cpu_capability(), "threads", torch.get_num_threads())' 2>/dev/null)"

# ---- the modes
ll_help="$("$BUILD/lsllama" train --help 2>&1 || true)"
has_compute=0
if grep -q -- '--compute' <<<"$ll_help"; then has_compute=1; fi
declare -A run=()
if [[ -n "${MODES:-}" ]]; then
  IFS=, read -ra asked <<<"$MODES"
  for m in "${asked[@]}"; do
    case "$m" in
      ll-f32 | hf-f32 | hf-bf16) run[$m]=1 ;;
      ll-bf16)
        if ((!has_compute)); then
          echo "error: MODES asks for ll-bf16, but '$BUILD/lsllama train --help' does not list --compute" >&2
          exit 2
        fi
        run[$m]=1 ;;
      *) echo "error: MODES: unknown mode '$m' (ll-f32, ll-bf16, hf-f32, hf-bf16)" >&2; exit 2 ;;
    esac
  done
else
  run[ll-f32]=1
  run[hf-f32]=1
  if ((!has_compute)); then
    echo "skipped: ll-bf16: '$BUILD/lsllama train --help' does not list --compute (a build without bf16 compute)"
  elif ! has_flag avx512_bf16; then
    echo "skipped: ll-bf16: the CPU has no avx512_bf16"
  else
    run[ll-bf16]=1
  fi
  if has_flag avx512_bf16; then
    run[hf-bf16]=1
  else
    echo "skipped: hf-bf16: the CPU has no avx512_bf16 (torch would emulate the bf16 products; MODES=hf-bf16 forces it)"
  fi
fi
order=""
for m in ll-f32 ll-bf16 hf-f32 hf-bf16; do if [[ -n "${run[$m]:-}" ]]; then order+=" $m"; fi; done
echo "modes:$order; $STEPS steps each"

# ---- the runs
# lsllama: the epoch's schedule, stopped after STEPS steps; every run dumps its batches, so that transformers replays
# exactly these and a run that trained on other batches shows
n_ll=0
with_peak_rss() {  # FILE CMD...: runs CMD, appends its peak RSS (KiB, the kernel's ru_maxrss) to FILE
  python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "a") as f:
    f.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
sys.exit(rc)' "$@"
}
lsllama_run() {  # MODE (f32|bf16): prints the kernels it recorded and its last log line
  local mode="$1" out="$W/ll"
  local extra=()
  if [[ "$mode" == bf16 ]]; then extra=(--compute bf16); fi
  n_ll=$((n_ll + 1))
  rm -rf "$out"
  if ! with_peak_rss "$W/rss.ll-$mode" "$BUILD/lsllama" train "$M" --train "$D/train.tsv" --out "$out" --pool last --mask causal --lora-r 12 \
    --lora-alpha 32 --lora-dropout 0.1 --lora-targets q,v --lr 5e-4 --warmup-ratio 0.06 --batch-tokens 1024 \
    --epochs 1 --seed 42 --stop-after-steps "$STEPS" --no-progress --dump-batches "$W/batches$n_ll.txt" \
    "${extra[@]}" >"$W/ll.log" 2>&1; then
    echo "error: lsllama train (${mode}) failed:" >&2
    tail -5 "$W/ll.log" >&2
    exit 1
  fi
  if ((n_ll > 1)) && ! cmp -s "$W/batches1.txt" "$W/batches$n_ll.txt"; then
    echo "warning: this lsllama run's batches differ from the first run's (which transformers replays)"
  fi
  python3 -c 'import json, sys
d = json.loads(sys.argv[1])
keys = ("compute", "gemm", "weights_gemm", "base_precision", "cpu")
show = lambda v: v if isinstance(v, str) else json.dumps(v)
print("  kernels: " + ", ".join(f"{k} {show(d[k])}" for k in keys if k in d))' \
    "$(head -1 "$out/log.jsonl")"
  echo "  $(tail -1 "$out/log.jsonl")"
}
hf_run() {  # MODE (f32|bf16): prints its JSON line
  local extra=()
  if [[ "$1" == bf16 ]]; then extra=(--bf16-autocast); fi
  # --no-eval: the dev set takes minutes on a small CPU and the figure here is throughput
  if ! with_peak_rss "$W/rss.hf-$1" python3 "$ROOT/tools/hf_train_compare.py" --model "$M" --train "$D/train.tsv" --dev "$D/dev.tsv" \
    --batches "$W/batches1.txt" --steps "$STEPS" --total-steps "$TOTAL" --threads "$(nproc)" --no-eval \
    "${extra[@]}" >"$W/hf.out" 2>"$W/hf.err"; then
    echo "error: tools/hf_train_compare.py ($1) failed:" >&2
    tail -5 "$W/hf.err" >&2
    exit 1
  fi
  echo "  $(tail -1 "$W/hf.out")"
}
tps() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])["tokens_per_s"])' "$1"; }

declare -A a=() b=()   # tokens/s: a = a mode's first (or only) run, b = the lsllama modes' second run
last() { tail -1 "$1"; }
if [[ -n "${run[ll-f32]:-}" ]]; then
  echo "lsllama f32:"; lsllama_run f32; a[ll-f32]="$(tps "$(last "$W/ll/log.jsonl")")"
fi
if [[ -n "${run[ll-bf16]:-}" ]]; then
  echo "lsllama bf16:"; lsllama_run bf16; a[ll-bf16]="$(tps "$(last "$W/ll/log.jsonl")")"
fi
if ((n_ll == 0)) && [[ -n "${run[hf-f32]:-}${run[hf-bf16]:-}" ]]; then
  # transformers replays lsllama's batches: one untimed run to write them
  echo "lsllama f32 (only to dump the batches transformers replays):"; lsllama_run f32
fi
if [[ -n "${run[hf-f32]:-}" ]]; then
  echo "transformers + PEFT f32:"; hf_run f32; a[hf-f32]="$(tps "$(last "$W/hf.out")")"
fi
if [[ -n "${run[hf-bf16]:-}" ]]; then
  echo "transformers + PEFT bf16 autocast:"; hf_run bf16; a[hf-bf16]="$(tps "$(last "$W/hf.out")")"
fi
if [[ -n "${run[ll-bf16]:-}" ]]; then
  echo "lsllama bf16 again:"; lsllama_run bf16; b[ll-bf16]="$(tps "$(last "$W/ll/log.jsonl")")"
fi
if [[ -n "${run[ll-f32]:-}" ]]; then
  echo "lsllama f32 again:"; lsllama_run f32; b[ll-f32]="$(tps "$(last "$W/ll/log.jsonl")")"
fi

# ---- the figures
args=()
for m in ll-f32 ll-bf16 hf-f32 hf-bf16; do
  rss=""
  if [[ -f "$W/rss.$m" ]]; then rss="$(sort -n "$W/rss.$m" | tail -1)"; fi
  args+=("$m=${a[$m]:-}/${b[$m]:-}=$rss")
done
python3 - "${args[@]}" <<'PY'
import sys
runs = {}
rss = {}
for arg in sys.argv[1:]:
    mode, vals, kib = arg.split("=")
    runs[mode] = [float(v) for v in vals.split("/") if v]
    if kib:
        rss[mode] = int(kib) / 1024
name = {"ll-f32": "lsllama f32", "ll-bf16": "lsllama bf16", "hf-f32": "HF f32", "hf-bf16": "HF bf16-autocast"}
mean = {m: sum(v) / len(v) for m, v in runs.items() if v}
print("tokens/s:")
for m, v in runs.items():
    if not v:
        print(f"  {name[m]:17s} not run")
    elif len(v) == 2:
        # the gap between the two runs of one mode is the load change the ratios may hide
        print(f"  {name[m]:17s} {mean[m]:8.1f}  (before {v[0]:.1f}, after {v[1]:.1f}: "
              f"{abs(v[0] - v[1]) / mean[m] * 100:.0f}% apart)")
    else:
        print(f"  {name[m]:17s} {mean[m]:8.1f}")
print("peak RSS (the largest of a mode's runs; transformers holds the GGUF's weights dequantized to f32):")
for m in runs:
    if m in rss:
        print(f"  {name[m]:17s} {rss[m]:8.0f} MiB")
print("ratios:")
for num, den in (("ll-f32", "hf-f32"), ("ll-bf16", "hf-f32"), ("ll-bf16", "hf-bf16"),
                 ("hf-bf16", "hf-f32"), ("ll-bf16", "ll-f32")):
    label = f"{name[num]} / {name[den]}"
    if num in mean and den in mean:
        print(f"  {label:35s} {mean[num] / mean[den]:.2f}x")
    else:
        print(f"  {label:35s} n/a ({', '.join(name[m] for m in (num, den) if m not in mean)} not run)")
PY
