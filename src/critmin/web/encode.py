"""JSON for the web layer: table rows for answers and pages, and data for page scripts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

_SCRIPT_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of `frame` as plain JSON values: NaN as null, 15 significant digits, anything
    else (dates, tuples) as its string."""
    text = frame.replace({np.nan: None}).to_json(
        orient="records", default_handler=str, double_precision=15
    )
    return json.loads(text)


def script_json(value: object) -> str:
    """`value` as JSON that is safe inside a <script> element: no '<', '>' or '&' (so no
    text a user wrote, such as an agreement title, can close the element or open a comment),
    the same value once parsed. OWASP XSS Prevention Cheat Sheet, rule 3.1."""
    return json.dumps(value).translate(_SCRIPT_UNSAFE)
