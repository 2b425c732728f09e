"""Shared market for the scenario tests: rare earths 2023, default short-run parameters."""

from __future__ import annotations

import pytest

from critmin.market import calibrate, resolve_parameters


@pytest.fixture(scope="session")
def ree():
    cal = calibrate("rare_earths", 2023)
    return cal, resolve_parameters(cal.countries)
