"""The one-file HTML briefing (`critmin brief`)."""

from critmin.report.brief import render_brief, write_brief

__all__ = ["render_brief", "write_brief"]
