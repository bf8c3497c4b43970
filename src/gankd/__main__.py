"""`python -m gankd` is the `gankd` command."""

from gankd.cli import main

main()
