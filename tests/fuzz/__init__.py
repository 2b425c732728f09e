"""Fuzz tests: the web API against its OpenAPI schema (schemathesis) and the file parsers
(hypothesis). `CRITMIN_STRESS=1` runs many more examples (`make stress`)."""

from __future__ import annotations

import os

STRESS = os.environ.get("CRITMIN_STRESS", "") == "1"


def budget(fast: int, stress: int) -> int:
    """Examples for one property: `fast` in `make test`, `stress` under CRITMIN_STRESS=1."""
    return stress if STRESS else fast
