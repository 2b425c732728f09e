"""The two sanitisers of text that leaves critmin for another program.

- `terminal_text`: what a terminal shows. Stored text (agreement titles, notes, parties),
  study names and actors may hold escape sequences (ESC [ … m restyles, OSC 8 makes a
  hidden link, OSC 52 writes the clipboard, a bare CR overwrites the line). They are
  removed, and every other control character is shown as a visible `\\xNN` (a newline in
  a note stays a newline where `keep_newlines`).
- `spreadsheet_cell`: a CSV or XLSX cell. A text cell starting with `=`, `+`, `-`, `@`,
  TAB or CR is read as a formula by spreadsheet programs (`=HYPERLINK(…)`, `=cmd|…`),
  so it gets a leading apostrophe (OWASP, "CSV Injection"); so does a cell that already
  starts with an apostrophe, which keeps the escape reversible (`unescape_cell`).
  Numbers stay numbers: only text is touched.
"""

from __future__ import annotations

import re

# CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \), DCS/SOS/PM/APC (ESC P|X|^|_ … ESC \),
# other two-character escapes, and the 8-bit C1 forms of CSI (0x9b) and OSC (0x9d).
_ESCAPES = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?          # CSI
  | (?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC
  | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?  # DCS, SOS, PM, APC
  | \x1b[ -/]*[0-~]?                          # other escapes (ESC c resets the terminal)
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_NO_NEWLINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_text(value: object, keep_newlines: bool = False) -> str:
    """`value` as text a terminal shows as written: escape sequences removed, other control
    characters (CR, BEL, backspace, C1) shown as `\\xNN`; tabs kept."""
    text = _ESCAPES.sub("", str(value))
    pattern = _CONTROL if keep_newlines else _CONTROL_NO_NEWLINE
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def has_control(text: str) -> bool:
    """Whether `text` holds an escape or control character (a newline and a tab do not
    count)."""
    return bool(_CONTROL.search(text))


def spreadsheet_cell(value: object) -> object:
    """A CSV/XLSX cell that no spreadsheet reads as a formula; non-text values unchanged."""
    if isinstance(value, str) and value.startswith((*FORMULA_START, "'")):
        return "'" + value
    return value


def unescape_cell(value: object) -> object:
    """Undo `spreadsheet_cell` on text read back from a CSV critmin wrote (a lone
    apostrophe, as a spreadsheet shows it, is the empty text)."""
    if value == "'":
        return ""
    if (
        isinstance(value, str)
        and value.startswith("'")
        and value[1:].startswith((*FORMULA_START, "'"))
    ):
        return value[1:]
    return value
