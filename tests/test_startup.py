"""Start-up stays light: `import critmin` and `critmin --help` load no analytical stack."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "scipy", "duckdb", "sqlalchemy", "fastapi")

# Runs in a fresh interpreter: prints the heavy top-level packages that got imported.
PROBE = """
import json, sys
{code}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))
"""


def _loaded(code: str) -> list[str]:
    probe = PROBE.format(code=code, heavy=HEAVY)
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
    code = (
        "import contextlib, io\n"
        "from critmin.cli.main import run\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    run({argv!r})\n"
    )
    assert _loaded(code) == []


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
