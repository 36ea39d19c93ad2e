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


def test_calls_release_the_gil():
    import ctypes
    from lsllama import _lib
    # ctypes.CDLL (not PyDLL): every foreign call drops the GIL for its duration
    assert type(_lib.lib) is ctypes.CDLL
    assert not _lib.lib._func_flags_ & ctypes._FUNCFLAG_PYTHONAPI


def test_console_command():
    exe = os.path.join(os.path.dirname(sys.executable), "lsllama")
    out = subprocess.run([exe, "predict", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: lsllama predict" in out.stdout
