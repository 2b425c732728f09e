"""Start-up stays light: `import critmin` and `critmin --help` load no analytical stack."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "scipy", "duckdb", "sqlalchemy", "fastapi")
# What Typer's own help and error renderer (typer.rich_utils) and its Pydantic-based value
# coercion import, ~0.1 s each: the top-level help and usage errors do without (issue 18).
RENDERING = (
    "typer.rich_utils",
    "rich.markdown",
    "markdown_it",
    "rich.syntax",
    "rich.traceback",
    "pydantic",
)

# Runs in a fresh interpreter: prints which of the given modules got imported (a package
# counts once any of its modules is, since that imports the package itself).
PROBE = """
import json, sys
{code}
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def _loaded(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = PROBE.format(code=code, heavy=heavy)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_critmin_loads_no_heavy_package():
    assert _loaded("import critmin\nassert critmin.InputError") == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], [], ["--version"], ["no-such-command"], ["--no-such-option"]],
    ids=["help", "no-args", "version", "unknown-command", "unknown-option"],
)
def test_cli_answers_without_heavy_packages(argv):
    """Neither the analytical stack nor Typer's rich renderer and Pydantic: the top-level
    help is drawn by cli/main.py itself, and usage errors are one plain line."""
    code = (
        "import contextlib, io\n"
        "from critmin.cli.main import run\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    run({argv!r})\n"
    )
    assert _loaded(code, HEAVY + RENDERING) == []


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_an_ensemble_runs_without_pandas(fmt):
    """The whole `critmin ensemble` command (calibration, hazard, draws, output) works on
    NumPy columns: pandas, 0.35 s of a 5 s command here, is not imported (issue 18)."""
    argv = ["ensemble", "--commodity", "REE", "--bloc", "eu27", "--draws", "50", "-f", fmt]
    code = (
        "import contextlib, io\n"
        "from critmin.cli.main import run\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert run({argv!r}) == 0\n"
        "assert 'expected' in out.getvalue()\n"
    )
    assert _loaded(code, ("pandas", "scipy", "sqlalchemy", "fastapi")) == []


def test_public_functions_load_on_first_use():
    import critmin
    from critmin.metrics import dependence

    assert critmin.dependence is dependence
    assert "zone" in dir(critmin)
    assert critmin.__version__
    with pytest.raises(AttributeError):
        _ = critmin.no_such_name


def test_command_summaries_match_the_commands():
    """The listing reads each summary from source; it is the loaded command's help."""
    from critmin.cli.main import COMMANDS, load_command, summary

    for name in COMMANDS:
        first = inspect.cleandoc(load_command(name).help or "").split("\n\n")[0]
        assert summary(name) == " ".join(first.split()), name
