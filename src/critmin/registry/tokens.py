"""Bearer tokens for the web API: created once (the secret is shown once), stored as
SHA-256 digests, revoked by name, checked in constant time."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from critmin.errors import InputError
from critmin.registry.models import ApiToken
from critmin.registry.store import Registry

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(registry: Registry, name: str) -> str:
    """A new token named `name`; returns the secret (not stored, shown once)."""
    if not NAME.match(name):
        raise InputError(f"token name {name!r}: use 1-80 letters, digits, '.', '_' or '-'")
    secret = "cm_" + secrets.token_urlsafe(32)
    with Session(registry.engine) as session, session.begin():
        if session.get(ApiToken, name) is not None:
            raise InputError(f"a token named {name!r} exists; revoke it or pick another name")
        session.add(ApiToken(name=name, digest=_digest(secret), created_at=dt.datetime.now(dt.UTC)))
    return secret


def revoke_token(registry: Registry, name: str) -> None:
    """Revoke the token `name` (kept for the record, no longer accepted)."""
    with Session(registry.engine) as session, session.begin():
        token = session.get(ApiToken, name)
        if token is None:
            raise InputError(f"no token named {name!r}; see 'critmin tokens list'")
        if token.revoked_at is None:
            token.revoked_at = dt.datetime.now(dt.UTC)


def list_tokens(registry: Registry) -> list[dict]:
    """Names, creation and revocation times (never the secrets)."""
    with Session(registry.engine) as session:
        rows = session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
        return [
            {"name": t.name, "created_at": t.created_at, "revoked_at": t.revoked_at} for t in rows
        ]


def token_holder(registry: Registry, secret: str | None) -> str | None:
    """The name of the active token matching `secret`, or None."""
    if not secret:
        return None
    digest = _digest(secret)
    with Session(registry.engine) as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None))).all()
    for token in rows:
        if hmac.compare_digest(token.digest, digest):
            return token.name
    return None
