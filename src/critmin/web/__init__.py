"""The web application: JSON API (FastAPI) for critmin's answers."""

from critmin.web.app import create_app

__all__ = ["create_app"]
