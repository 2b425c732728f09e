"""Crash-safety tests: the CLI and the server killed with SIGKILL during writes and runs."""
