"""`python -m app` is the `cse` command."""

from app.cli import main

main()
