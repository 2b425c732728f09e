"""`python -m critmin` runs the command line."""

from critmin.cli.main import entry

entry()
