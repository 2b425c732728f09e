"""The `critmin` entry point: command groups, and one-line errors with exit code 2."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import inspect
import sys
from difflib import get_close_matches
from importlib import import_module
from pathlib import Path

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup
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


@functools.cache
def _module_tree(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8"))


def summary(name: str) -> str:
    """The first paragraph of command `name`'s help, read from its module's source: the
    function's docstring, or the `help=` of a sub-app's `typer.Typer(...)`."""
    module, attribute = COMMANDS[name].split(":")
    for node in _module_tree(module).body:
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
    return " ".join(inspect.cleandoc(str(text)).split("\n\n")[0].split())


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

    _listing = False  # True while the group's own help is drawn: summaries suffice

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*self.commands, *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | TyperGroup | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=summary(cmd_name))
        self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: typer.Context, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        try:
            return self._click_resolve_command(ctx, args)
        except typer.TyperException as exc:  # a usage error: suggest close names, as Typer does
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                suggestions = ", ".join(f"{m!r}" for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise


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
    sys.exit(run())
