"""The top-level listing (`critmin --help`, `critmin`), drawn by cli/main.py itself rather
than by Typer's renderer (issue 18): every command with its summary, the options, a
readable width, styles only on a terminal."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from critmin.cli.main import COMMANDS, run, summary

# A row of a box: the name column (empty on a wrapped line), then the help text.
ROW = re.compile(r"^[│|] (\S*) +(.*?) *[│|]$")


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    """80 columns, no forced or banned colours: the listing as a pipe gets it."""
    for name in ("TERMINAL_WIDTH", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "xterm-256color")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _listing(argv: list[str], stream: io.TextIOBase | None = None) -> tuple[int, str]:
    stream = io.StringIO() if stream is None else stream
    with contextlib.redirect_stdout(stream):
        code = run(argv)
    if isinstance(stream, io.StringIO):
        return code, stream.getvalue()
    stream.flush()
    return code, stream.buffer.getvalue().decode(stream.encoding)


def _rows(out: str) -> dict[str, str]:
    """Name -> help text of every box row, wrapped lines joined."""
    rows: dict[str, str] = {}
    name = ""
    for line in out.splitlines():
        if found := ROW.match(line):
            if found[1]:
                name = found[1]
                rows[name] = found[2]
            else:
                rows[name] += " " + found[2]
    return rows


def test_help_lists_every_command_with_its_summary_and_the_options():
    code, out = _listing(["--help"])
    assert code == 0
    assert "Usage: critmin [OPTIONS] COMMAND [ARGS]..." in out
    assert "Critical-minerals supply-chain policy analysis on open data." in out
    assert "Options" in out and "Commands" in out
    rows = _rows(out)
    assert rows.pop("--version") == "Print the version and exit."
    assert rows.pop("--help") == "Show this message and exit."
    assert rows == {name: summary(name) for name in COMMANDS}
    assert list(rows) == list(COMMANDS)


def test_help_fits_80_columns_and_has_no_styles_in_a_pipe():
    _, out = _listing(["--help"])
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\x1b" not in out
    assert out.count("╭─") == 2 and out.count("╰─") == 2


def test_no_arguments_print_the_listing_and_exit_with_2():
    code, out = _listing([])
    assert code == 2
    # `--help` ends with one more newline: Click echoes the (empty) formatted help.
    assert out.rstrip("\n") == _listing(["--help"])[1].rstrip("\n")


def test_terminal_width_follows_typer_setting(monkeypatch):
    monkeypatch.setenv("TERMINAL_WIDTH", "120")
    _, out = _listing(["--help"])
    assert {len(line) for line in out.splitlines() if line.startswith("│")} == {120}


def test_styles_on_a_terminal_only(monkeypatch):
    _, out = _listing(["--help"], _Terminal())
    assert "\x1b[1;36mdependence" in out
    assert "\x1b[1;36m--format\x1b[0m" in out  # an option named in a summary
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b" not in _listing(["--help"], _Terminal())[1]


def test_ascii_boxes_where_the_output_cannot_encode_box_drawing():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    code, out = _listing(["--help"], stream)
    assert code == 0
    assert "+- Commands -" in out
    assert _rows(out)["dependence"] == summary("dependence")


def test_usage_errors_stay_one_line_with_a_suggestion(capsys):
    assert run(["depndence"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "No such command 'depndence'. Did you mean 'dependence'?" in captured.err
    assert run(["--no-such-option"]) == 2
    assert "No such option: --no-such-option" in capsys.readouterr().err


def test_version_still_answers():
    code, out = _listing(["--version"])
    assert code == 0
    assert re.fullmatch(r"critmin \S+\n", out)
