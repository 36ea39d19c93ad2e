"""The installed package: version, no PyTorch, the bundled library and tool."""
import os
import subprocess
import sys

import lsllama


def test_version_and_no_torch():
    code = ("import sys, lsllama; print(lsllama.__version__); "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == lsllama.__version__
    from importlib.metadata import version
    assert version("lsllama") == lsllama.__version__


def test_installed_library_and_tool():
    here = os.path.dirname(lsllama.__file__)
    assert os.path.exists(os.path.join(here, "liblsllama.so"))
    out = subprocess.run([lsllama.cli_path(), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "predict" in out.stdout + out.stderr
