#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (scripts/setup.sh),
# builds, generates the reference files that are too large to commit, runs
# every test with ctest, builds the Python package's wheel in a fresh virtual
# environment and runs its pytest suite, then the fast tests again under ASan/UBSan.
#
#   BUILD   build folder (default: build)     LL_NO_ASAN=1  skip the sanitizer pass
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh" --tests
BUILD="${BUILD:-$ROOT/build}"
JOBS="$(nproc)"

# with MPI: the data-parallel tests (label mpi) need it; the sanitizer build below is the one without
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLL_MPI=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS"

# Reference outputs made by Hugging Face at test time (too large to commit).
mkdir -p "$BUILD/generated"
if [ -f tools/gen_fixtures_tokenizer.py ]; then
  python3 tools/gen_fixtures_tokenizer.py --out "$BUILD/generated/tokenizer"
  python3 tools/gen_fixtures_tokenizer_settings.py --out "$BUILD/generated/tokenizer_settings"
fi
python3 tools/gen_fixtures_config.py --out "$BUILD/generated/config_sweep"
python3 tools/gen_fixtures_precision.py --out "$BUILD/generated/precision"
python3 tools/gen_fixtures_full.py --out "$BUILD/generated/full_seqcls"
python3 tools/gen_fixtures_peft_gemma3.py --out "$BUILD/generated/peft_gemma3"
# Gemma 3 270M as transformers computes it from the GGUF setup.sh fetched (its tokenizer.json from above)
python3 tools/gen_fixtures_gemma3.py --tokenizer "$BUILD/generated/tokenizer/tok/gemma3/tokenizer.json" \
  --out "$BUILD/generated/gemma3"

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$JOBS}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$JOBS}"
(cd "$BUILD" && ctest --output-on-failure -j1)

# The Python package: its wheel built (scikit-build-core compiles liblsllama.so) and installed in a fresh
# virtual environment, then its tests, comparing it with this build's lsllama tool.
VENV="$BUILD/python-venv"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "$ROOT/python[test]"
(cd "$ROOT/python" && LSLLAMA_CLI="$BUILD/lsllama" "$VENV/bin/python" -m pytest -q tests)

if [ "${LL_NO_ASAN:-0}" != 1 ]; then
  # Sanitizers on everything that is quick enough when instrumented.
  ASAN_BUILD="${BUILD}-asan"
  cmake -S "$ROOT" -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DLL_SANITIZE=ON -DLL_MPI=OFF >/dev/null
  cmake --build "$ASAN_BUILD" -j"$JOBS"
  ln -sfn "$BUILD/generated" "$ASAN_BUILD/generated"
  (cd "$ASAN_BUILD" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j1 -LE slow)
fi
