"""`python -m fmtool` (and `torchrun -m fmtool`) enter the same CLI as the console script."""

from fmtool.cli.app import main

main()
