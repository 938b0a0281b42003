"""How the panel's text and HTML look: escaping, numbers, the status colours, the inline CSS.

Shared by :mod:`leadlex_nb.render_plan`, :mod:`leadlex_nb.render_outcome` and the widgets in
:mod:`leadlex_nb.panel`. Every shown value goes through :func:`esc`: error messages come from the
network and invalid IDs from the user's frame.
"""

from __future__ import annotations

import html

# One colour per status: the plan's list and the outcome bar speak the same colours.
STATUS_COLOURS: dict[str, str] = {
    "deleted": "#2e7d32",
    "not_found": "#9e9e9e",
    "gone": "#607d8b",
    "error": "#c62828",
    "invalid": "#8d6e63",
    "would_delete": "#1565c0",
    "unresolved": "#ef6c00",
    "not_sent": "#f9a825",
    "unknown": "#6a1b9a",
}

# Inline CSS, so one HTML string looks the same in the widget and in the static copy a saved notebook
# keeps; the --jp-* variables follow JupyterLab's theme, their fallbacks serve other renderers.
BOX = ("font-family:var(--jp-ui-font-family, sans-serif);font-size:13px;line-height:1.45;"
      "color:var(--jp-ui-font-color1, #222)")
MUTED = "color:var(--jp-ui-font-color2, #666)"
TABLE = "border-collapse:collapse;margin:4px 0"
CELL = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"
NUM = "padding:1px 10px 1px 0;text-align:right;font-variant-numeric:tabular-nums"
CODE = "font-family:var(--jp-code-font-family, monospace);font-size:12px"
WARNING = ("background:var(--jp-warn-color3, #fff3cd);border-left:4px solid var(--jp-warn-color1, #b26a00);"
           "padding:4px 8px;margin:6px 0")
ERROR = ("background:var(--jp-error-color3, #fdecea);border-left:4px solid var(--jp-error-color1, #c62828);"
         "padding:4px 8px;margin:6px 0")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(n: int) -> str:
    """Thousands separators, as in the counts and on the Delete button: ``2,980``."""
    return f"{n:,}"

