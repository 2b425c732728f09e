"""The `critmin` entry point: command groups, and one-line errors with exit code 2."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import inspect
import os
import re
import sys
from difflib import get_close_matches
from importlib import import_module
from pathlib import Path
from typing import TextIO

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import CommandInfo

from critmin.errors import CritminError

# Each command is loaded from its module only when it runs (or its own --help is asked
# for), so `critmin --help` and a mistyped command answer without importing the analytical
# stack. Name -> "module:attribute", a command function or a Typer sub-app; the listing's
# one-line summaries are read from the modules' source (`summary`), not by importing them.
COMMANDS: dict[str, str] = {
    "overview": "critmin.cli.overview:overview",
    "dependence": "critmin.cli.dependence:dependence",
    "trace": "critmin.cli.dependence:trace",
    "concentration": "critmin.cli.dependence:concentration",
    "risk": "critmin.cli.risk:risk",
    "shock": "critmin.cli.market:shock",
    "zone": "critmin.cli.market:zone",
    "backtest": "critmin.cli.market:backtest",
    "run": "critmin.cli.scenarios:run",
    "brief": "critmin.cli.brief:brief",
    "serve": "critmin.cli.web:serve",
    "ensemble": "critmin.cli.scenarios:ensemble",
    "coalition": "critmin.cli.scenarios:coalition",
    "stockpile": "critmin.cli.scenarios:stockpile",
    "data": "critmin.cli.data:app",
    "agreements": "critmin.cli.agreements:app",
    "tokens": "critmin.cli.web:tokens",
}


# A line that starts a new top-level statement: anything in column 0 but a closing
# bracket (the end of a signature or of a call spread over lines) or a comment.
_TOP_LEVEL = re.compile(r"^(?=[^\s)\]}#])", re.MULTILINE)


@functools.cache
def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).read_text(encoding="utf-8")


@functools.cache
def _module_tree(module: str) -> ast.Module:
    return ast.parse(_source(module))


def _definition(module: str, attribute: str) -> list[ast.stmt]:
    """The top-level statements of `module` that define `attribute`, parsed from source.

    Parsing a whole module costs several ms, ~50 ms for the listing's nine modules, a
    sixth of the start-up budget. So only the text from `def attribute(` (down to its
    docstring) or `attribute =` (down to the next line in column 0) is parsed; a cut
    inside a string or brackets cannot parse, and then the whole module is."""
    text = "\n" + _source(module)
    # Plain string search: a regex compiled per attribute would cost more than it saves.
    heads = (f"\ndef {attribute}(", f"\n{attribute} =")
    start = min((i for i in map(text.find, heads) if i >= 0), default=-1) + 1
    if start:
        end = _TOP_LEVEL.search(text, text.find("\n", start) + 1)
        chunk = text[start : end.start() if end else len(text)]
        cuts = [chunk]
        opening = chunk.find('\n    """') if chunk.startswith("def") else -1
        if opening >= 0:  # a command's body is most of its text, and not needed here
            closing = chunk.find('"""', opening + 8)
            cuts.insert(0, chunk[: closing + 3])
        for cut in cuts:
            with contextlib.suppress(SyntaxError):
                return ast.parse(cut).body
    return _module_tree(module).body


def summary(name: str) -> str:
    """The first paragraph of command `name`'s help, read from its module's source: the
    function's docstring, or the `help=` of a sub-app's `typer.Typer(...)`."""
    module, attribute = COMMANDS[name].split(":")
    for node in _definition(module, attribute):
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            text = ast.get_docstring(node) or ""
            break
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == attribute for t in node.targets
        ):
            keywords = getattr(node.value, "keywords", [])
            text = next((k.value.value for k in keywords if k.arg == "help"), "")
            break
    else:
        text = ""
    return _first_paragraph(str(text))


def _first_paragraph(text: str) -> str:
    """A help text's first paragraph on one line, as Typer's listing shows it."""
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def load_command(name: str) -> TyperCommand | TyperGroup:
    """Import the module of command `name` and build its Click command."""
    module, attribute = COMMANDS[name].split(":")
    obj = getattr(import_module(module), attribute)
    if isinstance(obj, typer.Typer):
        command: TyperCommand | TyperGroup = typer.main.get_group(obj)
    else:
        command = typer.main.get_command_from_info(
            CommandInfo(name=name, callback=obj),
            pretty_exceptions_short=True,
            rich_markup_mode="rich",
        )
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The top-level group: lists every command from `COMMANDS`, imports one when used."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*self.commands, *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def get_help_option(self, ctx: typer.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            # Typer coerces an absent flag's None through Pydantic (~0.1 s to import) and
            # takes a bool as it is: with False, `critmin no-such-command` fails without it.
            option.default = False
        return option

    def format_help(self, ctx: typer.Context, formatter) -> None:
        """Print the listing to stdout, as Typer's help does (the formatter stays empty)."""
        _print_listing(self, ctx)

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        try:
            return self._click_resolve_command(ctx, args)
        except typer.TyperException as exc:  # a usage error: suggest close names, as Typer does
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                suggestions = ", ".join(f"{m!r}" for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


def _short_help(group: LazyGroup, name: str) -> str | None:
    """Command `name`'s line in the listing, None for a hidden command; read from source
    unless the command is loaded already."""
    command = group.commands.get(name)
    if command is None:
        return summary(name)
    return None if command.hidden else _first_paragraph(command.short_help or command.help or "")


# The listing's styles, Typer's rich-help colours as SGR codes.
_BOLD, _USAGE, _NAME, _BORDER = "1", "1;33", "1;36", "2"
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")  # an option named in a help text
# A Rich markup tag ([bold], [/bold], [/]) or an escaped bracket (\[): help texts are
# written as Rich markup, which the commands' own (Typer) help renders.
_MARKUP = re.compile(r"\\\[|\[/?[a-z#@][^\[\]]*\]|\[/\]")


def _styles_wanted(stream: TextIO) -> bool:
    """Whether to colour the listing: only on a terminal, as Rich decides (NO_COLOR and
    TERM=dumb turn colours off, FORCE_COLOR turns them on). A Windows console shows the
    codes only under Windows Terminal (Rich switches older consoles itself)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") in ("dumb", "unknown"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and (os.name != "nt" or "WT_SESSION" in os.environ)


def _print_listing(group: LazyGroup, ctx: typer.Context) -> None:
    """Write the top-level help to stdout in the look of Typer's rich help (usage, help,
    an Options and a Commands box), as plain text with ANSI styles on a terminal.

    Typer's own renderer, typer.rich_utils, imports Markdown, syntax highlighting and
    tracebacks (~0.1 s), and Rich's console and tables cost another ~0.05 s to import and
    lay out: half of the 0.3 s that `critmin --help` may take (issue 18)."""
    import shutil
    import textwrap

    stream = sys.stdout
    styled = _styles_wanted(stream)

    def style(code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if styled and text else text

    def plain(markup: str) -> str:
        return _MARKUP.sub(lambda tag: "[" if tag[0] == "\\[" else "", markup)

    try:  # box-drawing characters where the output's encoding has them
        "╭─╮│╰╯".encode(getattr(stream, "encoding", None) or "utf-8")
        corners, line, side = "╭╮╰╯", "─", "│"
    except (UnicodeEncodeError, LookupError):
        corners, line, side = "++++", "-", "|"

    options = [
        (", ".join([*param.opts, *param.secondary_opts]), param.help or "")
        for param in group.get_params(ctx)
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
    ]
    commands = [
        (name, help_text)
        for name in group.list_commands(ctx)
        if (help_text := _short_help(group, name)) is not None
    ]
    # Typer's TERMINAL_WIDTH first, so that this help and the commands' agree; then
    # COLUMNS or the terminal's width; 80 in a pipe.
    columns = os.environ.get("TERMINAL_WIDTH", "")
    width = int(columns) if columns.isdigit() else shutil.get_terminal_size().columns
    width = max(width, 40)
    # One width for both boxes' first column, so that every help text starts in one
    # column; widths are counted in characters (the help texts are English).
    name_width = max(len(name) for name, _ in [*options, *commands])
    text_width = max(width - name_width - 6, 20)

    def box(title: str, rows: list[tuple[str, str]]) -> list[str]:
        rule = line * max(width - len(title) - 5, 1)
        out = [
            style(_BORDER, f"{corners[0]}{line} ") + title + style(_BORDER, f" {rule}{corners[1]}")
        ]
        for name, help_text in rows:
            parts = textwrap.wrap(plain(help_text), text_width, break_on_hyphens=False)
            for i, part in enumerate(parts or [""]):
                label = style(_NAME, name.ljust(name_width)) if i == 0 else " " * name_width
                text = _OPTION.sub(lambda m: style(_NAME, m[0]), part)
                gap = " " * (text_width - len(part))
                out.append(f"{style(_BORDER, side)} {label}  {text}{gap} {style(_BORDER, side)}")
        out.append(style(_BORDER, f"{corners[2]}{line * (width - 2)}{corners[3]}"))
        return out

    usage = f"{ctx.command_path} {' '.join(group.collect_usage_pieces(ctx))}"
    lines = ["", f" {style(_USAGE, 'Usage:')} {style(_BOLD, usage)}", ""]
    if group.help:
        for paragraph in inspect.cleandoc(plain(group.help)).split("\n\n"):
            lines += [f" {part}" for part in textwrap.wrap(paragraph, width - 2)] + [""]
    if options:
        lines += box("Options", options)
    if commands:
        lines += box("Commands", commands)
    stream.write("\n".join(lines) + "\n")


app = typer.Typer(
    name="critmin",
    help="Critical-minerals supply-chain policy analysis on open data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,
)


def _version(value: bool) -> None:
    if value:
        from critmin import __version__

        typer.echo(f"critmin {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Critical-minerals supply-chain policy analysis on open data."""


def _error(message: str) -> None:
    """One line on stderr; the message is printed as written (no Rich markup in it)."""
    from rich.markup import escape

    from critmin.cli.output import error_console
    from critmin.cli.sanitise import terminal_text

    error_console.print(
        f"[bold red]error:[/] {escape(terminal_text(message))}", highlight=False, soft_wrap=True
    )


def _output_failed(exc: OSError) -> int:
    """One line for a failed write to standard output (a full disk or /dev/full, a closed
    pipe) or another file-system error; stdout is pointed at /dev/null so that Python's
    own flush at exit does not fail a second time with a traceback."""
    import errno
    import os

    from critmin.data.io import os_problem

    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EIO) and not exc.filename:
        _error(f"cannot write the output: {os_problem(exc)}")
    else:
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{os_problem(exc)}")
    return 1 if exc.errno == errno.EPIPE else 2


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors, bad arguments and options included, print one line on
    stderr and exit with code 2."""
    try:
        code = app(args=argv, prog_name="critmin", standalone_mode=False)
        sys.stdout.flush()  # a full stdout fails here, not at exit (issue 19)
    except OSError as exc:  # BrokenPipeError included
        return _output_failed(exc)
    except typer.TyperException as exc:  # Typer's own: a bad option, a missing argument, ...
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already
            return exc.exit_code
        ctx = getattr(exc, "ctx", None)
        see = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _error(f"{exc.format_message().rstrip('.')}{see}")
        return exc.exit_code
    except CritminError as exc:
        _error(str(exc))
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        from critmin.cli.output import error_console

        error_console.print("interrupted")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    # Outside standalone mode, Typer returns the code of a typer.Exit (else the command's
    # return value, None).
    return code if isinstance(code, int) else 0


def entry() -> None:
    """Console-script entry point."""
    _leave(run())


def _leave(code: int) -> None:
    """End the process with `code` once its exit handlers have run and its streams are
    flushed, without the interpreter's teardown of every module and the arrays they hold:
    0.15-0.2 s after a model command on this 2-core machine (issue 18), spent on objects
    the operating system frees anyway. Threads are joined and files closed by then (the
    commands use `with` for both); weakref finalizers and logging run as exit handlers."""
    import atexit
    import os
    import threading

    threading._shutdown()  # what the interpreter does first: wait for non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
