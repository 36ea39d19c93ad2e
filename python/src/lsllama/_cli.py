"""`lsllama` on the command line: the tool built with the package (lsllama/bin/lsllama)."""
import os
import sys


def cli_path():
    """The path of the lsllama command-line tool installed with this package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "lsllama")


def main():
    path = cli_path()
    os.execv(path, [path] + sys.argv[1:])
