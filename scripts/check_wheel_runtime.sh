#!/usr/bin/env bash
# The Python wheel on a machine with only the Debian runtime libraries it declares (issue 15): builds the wheel
# here, makes a minimal Debian 12 root (debootstrap --variant=minbase) holding python3, python3-venv and the
# packages of python/debian-runtime-packages.txt (no compiler, no -dev package, no PyTorch, no numpy), installs
# the wheel there offline in a fresh virtual environment, and runs, inside that root:
#   - python -c "import lsllama; print(lsllama.__version__)" with neither torch nor numpy importable;
#   - the bundled lsllama tool (--help, and predict);
#   - lsllama.pipeline over a few SST-2 sentences with an adapter trained here on stories260K, whose probabilities
#     must equal (as printed) those of `lsllama predict` run outside the root with the same build.
# Needs root (chroot, mounting /proc) and a reachable Debian mirror (debootstrap). It changes nothing outside ROOTFS
# and a temporary folder.
#
# Usage: sudo scripts/check_wheel_runtime.sh [ROOTFS]   (default /tmp/lsllama-runtime-root; reused when it exists)
#   MIRROR: the Debian mirror (default http://deb.debian.org/debian)
#   WHEEL: a wheel built already (pip wheel ./python), instead of building one
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RFS="${1:-/tmp/lsllama-runtime-root}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SHARED="${LSLLAMA_SHARED:-$ROOT/../shared}"
PKGS=$(grep -v '^#' "$ROOT/python/debian-runtime-packages.txt" | tr '\n' ' ' | xargs | tr ' ' ',')
[ "$(id -u)" = 0 ] || { echo "check_wheel_runtime: needs root (chroot)" >&2; exit 2; }

tmp=$(mktemp -d)
cleanup() { umount "$RFS/proc" 2>/dev/null || true; rm -rf "$tmp" "$RFS/check"; }
trap cleanup EXIT

echo "== wheel"
if [ -z "${WHEEL:-}" ]; then
  python3 -m pip wheel -q --no-deps -w "$tmp/wheel" "$ROOT/python"
  WHEEL=$(ls "$tmp"/wheel/lsllama-*.whl)
fi
echo "$(basename "$WHEEL")"
CLI="$tmp/unpacked/lsllama/bin/lsllama"
python3 -m zipfile -e "$WHEEL" "$tmp/unpacked"
chmod +x "$CLI"

echo "== Debian root: python3 python3-venv $PKGS"
if [ ! -x "$RFS/usr/bin/python3" ]; then
  debootstrap --variant=minbase --include="python3,python3-venv,$PKGS" bookworm "$RFS" "$MIRROR" >"$tmp/debootstrap.log" \
    || { tail -20 "$tmp/debootstrap.log"; exit 1; }
fi
for dev in gcc cc cmake; do
  if chroot "$RFS" sh -c "command -v $dev" >/dev/null 2>&1; then echo "the root has $dev: not runtime-only" >&2; exit 1; fi
done
chroot "$RFS" dpkg-query -W -f '${Package}\n' | grep -- '-dev$' && { echo "the root has -dev packages" >&2; exit 1; }

echo "== an adapter trained here (stories260K, 3 steps), and the reference predictions"
M="$SHARED/models/stories260K/stories260K.bin"
T="$SHARED/models/stories260K/tok512.bin"
head -n 33 "$SHARED/data/sst2/train.tsv" > "$tmp/train.tsv"
sed -n 2,21p "$SHARED/data/sst2/dev.tsv" | cut -f1 > "$tmp/texts.txt"
"$CLI" train "$M" --tokenizer "$T" --train "$tmp/train.tsv" --out "$tmp/run" --max-steps 3 --batch-tokens 256 \
  --no-progress >/dev/null 2>&1
"$CLI" predict "$M" --tokenizer "$T" --adapter "$tmp/run/final" --input "$tmp/texts.txt" --no-progress > "$tmp/cli.jsonl"

mkdir -p "$RFS/check"
cp "$WHEEL" "$M" "$T" "$tmp/texts.txt" "$tmp/cli.jsonl" "$RFS/check/"
cp -r "$tmp/run/final" "$RFS/check/adapter"
mount -t proc proc "$RFS/proc"
cat > "$RFS/check/run.py" <<'PY'
import importlib.util, json, sys
import lsllama
print("lsllama", lsllama.__version__, "from", lsllama.__file__)
for mod in ("torch", "numpy"):
    assert importlib.util.find_spec(mod) is None, mod + " is importable"
clf = lsllama.pipeline("/check/stories260K.bin", adapter="/check/adapter", tokenizer="/check/tok512.bin")
texts = [l.rstrip("\n") for l in open("/check/texts.txt", encoding="utf-8")]
ours = clf.predict(texts)
ref = [json.loads(l, parse_float=str) for l in open("/check/cli.jsonl", encoding="utf-8")]  # the printed digits
assert len(ours) == len(ref) == len(texts)
for i, (o, r) in enumerate(zip(ours, ref)):
    assert list(r["probabilities"]) == clf.labels, (i, r)
    assert ["%.6f" % p for p in o["probabilities"]] == [r["probabilities"][k] for k in clf.labels], (i, o, r)
    assert o["label"] == r["label"], (i, o, r)
assert len({r["probabilities"][clf.labels[0]] for r in ref}) > len(ref) // 2  # the texts' probabilities differ
print("pipeline: %d texts, probabilities equal to lsllama predict's (run outside this root)" % len(texts))
PY
echo "== inside the root"
chroot "$RFS" /bin/sh -ec '
  python3 --version
  rm -rf /check/venv && python3 -m venv /check/venv
  /check/venv/bin/pip install -q --no-index /check/lsllama-*.whl
  cd / && /check/venv/bin/python -c "import lsllama; print(lsllama.__version__)"
  lib=$(/check/venv/bin/python -c "import lsllama, os; print(os.path.dirname(lsllama.__file__))")/liblsllama.so
  ldd "$lib" | grep "libopenblas.so.0 => .*/openblas-openmp/" && echo "libopenblas.so.0: the OpenMP build"
  /check/venv/bin/lsllama --help | head -n 1
  /check/venv/bin/lsllama predict /check/stories260K.bin --tokenizer /check/tok512.bin --adapter /check/adapter \
    --input /check/texts.txt --no-progress > /check/root_cli.jsonl
  cmp /check/root_cli.jsonl /check/cli.jsonl && echo "lsllama predict: output equal to the one outside the root"
  /check/venv/bin/python /check/run.py'
echo "check_wheel_runtime: passed"
