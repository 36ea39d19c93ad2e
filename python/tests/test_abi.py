"""The ctypes mirrors of the C structs have the headers' layout: a C program compiled against include/ prints
sizeof and offsetof of every mirrored struct and field, and they must equal ctypes' figures. (A field added
to a header without updating lsllama/_lib.py fails here, not as corrupt memory.)"""
import ctypes
import shutil
import subprocess

from lsllama import _lib as L
from conftest import REPO

STRUCTS = [name for name in dir(L) if name.startswith("ll_") and isinstance(getattr(L, name), type)
           and issubclass(getattr(L, name), ctypes.Structure)]


def test_struct_layouts_match_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (build-essential)"
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "lsllama.h"', '#include "lsllama_tokenizer.h"',
             '#include "lsllama_train.h"', "int main(void) {"]
    expect = []
    for s in STRUCTS:
        cls = getattr(L, s)
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (s, s))
        expect.append("%s %d" % (s, ctypes.sizeof(cls)))
        for f, _ in cls._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (s, f, s, f))
            expect.append("%s.%s %d" % (s, f, getattr(cls, f).offset))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=gnu11", "-I", str(REPO / "include"), str(src), "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    assert [g for g in got if g] == expect
    assert len(STRUCTS) >= 15
