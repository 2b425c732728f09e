"""`critmin serve` and `critmin tokens`: the web API and its write tokens."""

from __future__ import annotations

import pandas as pd
import typer

from critmin.cli.output import OutputFormat, console, emit, error_console
from critmin.registry.store import Registry
from critmin.registry.tokens import create_token, list_tokens, revoke_token

tokens = typer.Typer(help="Bearer tokens for the web API's write endpoints.", no_args_is_help=True)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=32, help="Server processes."),
) -> None:
    """Serve the pages and the JSON API (OpenAPI at /docs)."""
    from critmin.web.server import serve as serve_app

    console.print(f"critmin on http://{host}:{port}/ (API and OpenAPI: http://{host}:{port}/docs)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        # See SECURITY.md: beyond this machine, reads are open and nothing is encrypted.
        error_console.print(
            f"note: {host} is reachable from other machines: reads are open to them unless "
            "CRITMIN_WEB_READ_TOKEN=1, and traffic is not encrypted (put a TLS reverse proxy "
            "in front); see SECURITY.md"
        )
    # Timeouts for slow clients, a connection limit, a bounded shutdown (SECURITY.md).
    serve_app(host, port, workers)


@tokens.command("create")
def create(name: str = typer.Argument(..., help="A name for the token holder.")) -> None:
    """Create a token; the secret is printed once and stored only as a hash."""
    secret = create_token(Registry(), name)
    console.print(f"token {name}: {secret}")
    console.print("Keep it now: only its hash is stored. Send it as 'Authorization: Bearer …'.")


@tokens.command("revoke")
def revoke(name: str = typer.Argument(..., help="Token name.")) -> None:
    """Revoke a token by name."""
    revoke_token(Registry(), name)
    console.print(f"token {name} revoked")


@tokens.command("list")
def list_(fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f")) -> None:
    """Token names with creation and revocation times."""
    emit(pd.DataFrame(list_tokens(Registry()), columns=["name", "created_at", "revoked_at"]), fmt)
