"""python -m lsllama: the command-line tool installed with the package (as the `lsllama` command)."""
from ._cli import main

main()
