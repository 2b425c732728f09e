"""The `critmin` entry point: command groups, and one-line errors with exit code 2."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from critmin import __version__
from critmin.cli import agreements as agreement_commands
from critmin.cli import brief as brief_commands
from critmin.cli import data as data_commands
from critmin.cli import dependence as dependence_commands
from critmin.cli import market as market_commands
from critmin.cli import overview as overview_commands
from critmin.cli import risk as risk_commands
from critmin.cli import scenarios as scenario_commands
from critmin.cli import web as web_commands
from critmin.cli.output import error_console
from critmin.errors import CritminError

app = typer.Typer(
    name="critmin",
    help="Critical-minerals supply-chain policy analysis on open data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_commands.app, name="data")
app.add_typer(agreement_commands.app, name="agreements")
app.command("overview")(overview_commands.overview)
app.command("dependence")(dependence_commands.dependence)
app.command("trace")(dependence_commands.trace)
app.command("concentration")(dependence_commands.concentration)
app.command("risk")(risk_commands.risk)
app.command("shock")(market_commands.shock)
app.command("zone")(market_commands.zone)
app.command("backtest")(market_commands.backtest)
app.command("run")(scenario_commands.run)
app.command("brief")(brief_commands.brief)
app.command("serve")(web_commands.serve)
app.add_typer(web_commands.tokens, name="tokens")
app.command("ensemble")(scenario_commands.ensemble)
app.command("coalition")(scenario_commands.coalition)
app.command("stockpile")(scenario_commands.stockpile)


def _version(value: bool) -> None:
    if value:
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
    error_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors, bad arguments and options included, print one line on
    stderr and exit with code 2."""
    try:
        code = app(args=argv, prog_name="critmin", standalone_mode=False)
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
