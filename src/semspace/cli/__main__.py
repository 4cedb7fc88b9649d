"""`python -m semspace.cli …`."""

from semspace.cli.app import main

main()
