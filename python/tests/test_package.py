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


def _declared_runtime_packages():
    path = os.path.join(os.path.dirname(__file__), "..", "debian-runtime-packages.txt")
    with open(path, encoding="utf-8") as f:
        return {l.strip() for l in f if l.strip() and not l.startswith("#")}


def _owning_package(soname, binary):
    """The Debian package of the file the dynamic linker resolves soname to for binary (ldd), by dpkg -S."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    path = next(l.split("=>")[1].split()[0] for l in out.splitlines() if l.strip().startswith(soname + " "))
    real = os.path.realpath(path)
    for candidate in (real, path):
        found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.split(":")[0]
    # usrmerge: dpkg may know the file by its /lib spelling
    found = subprocess.run(["dpkg", "-S", real.replace("/usr/lib/", "/lib/", 1)], capture_output=True, text=True)
    assert found.returncode == 0, "no Debian package owns %s (%s)" % (real, soname)
    return found.stdout.split(":")[0]


def test_runtime_libraries_are_the_declared_debian_packages():
    """Every library the wheel's liblsllama.so and lsllama tool link directly (readelf's NEEDED) belongs to a package
    of debian-runtime-packages.txt or to libc6, so the documented list is what a runtime-only machine needs."""
    declared = _declared_runtime_packages() | {"libc6"}
    here = os.path.dirname(lsllama.__file__)
    for binary in (os.path.join(here, "liblsllama.so"), lsllama.cli_path()):
        dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
        needed = [l.split("[")[1].split("]")[0] for l in dyn.splitlines() if "(NEEDED)" in l]
        assert "libopenblas.so.0" in needed and "libcjson.so.1" in needed, needed
        owners = {soname: _owning_package(soname, binary) for soname in needed}
        undeclared = {s: p for s, p in owners.items() if p not in declared}
        assert not undeclared, "%s links libraries of undeclared packages: %s" % (binary, undeclared)


def test_cpu_check_on_load():
    """The package asked the library whether this CPU runs it (ll_cpu_check) when it loaded: here it does."""
    from lsllama import _lib
    err = _lib.ll_error()
    assert _lib.ll_cpu_check(err) == 0, err.message


def test_version_is_the_library_and_tool_version():
    """One version: the package's __version__, the library's ll_version() (CMake's project version) and the
    tool's --version."""
    from lsllama import _lib
    assert _lib.ll_version().decode() == lsllama.__version__
    out = subprocess.run([lsllama.cli_path(), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "lsllama %s\n" % lsllama.__version__
