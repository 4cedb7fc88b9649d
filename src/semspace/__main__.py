"""`python -m semspace …`: the command line."""

from semspace.cli.app import main

main()
