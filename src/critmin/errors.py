"""One error family for critmin: bad user input, bad data, failed solves."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CritminError(Exception):
    """Base of every error critmin raises on purpose; the CLI prints it as one line."""

    exit_code = 2


class InputError(CritminError, ValueError):
    """The user asked for something that does not exist or cannot be computed."""


class NotFoundError(InputError):
    """A record asked for by its identifier does not exist (HTTP 404 in the web API)."""


class DataError(CritminError):
    """A data file or table is malformed, inconsistent or missing."""


class SolverError(CritminError):
    """A numerical model did not converge or was given an impossible problem."""


class UnknownNameError(InputError):
    """A commodity, country, group or table name that resolves to nothing."""

    def __init__(self, kind: str, name: str, candidates: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.suggestions = closest_names(name, candidates)
        message = f"unknown {kind} {name!r}"
        if self.suggestions:
            message += "; closest: " + ", ".join(self.suggestions)
        if hint:
            message += f" ({hint})"
        super().__init__(message)


def closest_names(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The few candidates most similar to `name` (difflib ratio), best first, case-insensitive."""
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = name.casefold()
    matches = difflib.get_close_matches(folded, list(by_folded), n=limit, cutoff=0.5)
    if len(matches) < limit:
        # Prefix/substring matches catch abbreviations difflib scores low ("germ" → germanium).
        extra = [c for c in by_folded if folded and (c.startswith(folded) or folded in c)]
        matches += [c for c in sorted(extra, key=len) if c not in matches][: limit - len(matches)]
    return [by_folded[m] for m in matches]
