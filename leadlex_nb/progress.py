"""Progress bars and routine notes for people: a widget in notebooks, text in terminals.

In a Jupyter kernel a bar is a tqdm widget shown with a plain-text fallback, and when it closes it
is replaced by one static line that says what was done (``dry run: 2,980 IDs in 1.4 s (2,100 IDs/s)``):
widget state is not saved with a notebook, so a bar left as a widget would read "0%" or "model not
found" once the notebook is reopened. In a terminal it is tqdm's text bar.

A front end that shows progress itself (the notebook's confirm panel) plugs in through
:func:`progress_sink`, for the runs started in its own context.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from leadlex_nb.hooks import Progress

UNIT = " IDs"  # tqdm writes "{rate}{unit}/s": the space makes "750 IDs/s", not "750id/s"

# (total, desc) -> a Progress, or None to let the default bar show it.
ProgressSink = Callable[[int, str], "Progress | None"]
_sink: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar("leadlex_nb_progress_sink", default=None)
_display_ids = itertools.count(1)


@contextlib.contextmanager
def progress_sink(sink: ProgressSink) -> Iterator[None]:
    """Send the progress bars of runs started in this context (thread, task) to ``sink`` first."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def tqdm_progress(total: int, desc: str) -> Progress:
    """The progress factory of runs with ``progress=True``."""
    sink = _sink.get()
    if sink is not None:
        bar = sink(total, desc)
        if bar is not None:
            return bar
    return default_progress(total, desc)


def default_progress(total: int, desc: str) -> Progress:
    if in_kernel():
        try:
            return NotebookBar(total, desc)
        except Exception:  # no widget support (ipywidgets missing or broken): a text bar on stdout
            from tqdm.std import tqdm as text_tqdm

            return text_tqdm(total=total, desc=desc, unit=UNIT, leave=True, file=sys.stdout)
    from tqdm.std import tqdm as text_tqdm

    return text_tqdm(total=total, desc=desc, unit=UNIT, leave=True)


def in_kernel() -> bool:
    """True inside a Jupyter (ipykernel) kernel, whatever the frontend."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None) if ipython is not None else None
    shell = get_ipython() if get_ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def done_line(desc: str, done: int, total: int, seconds: float, *, unit: str = "IDs") -> str:
    """``dry run: 2,980 IDs in 1.4 s (2,100 IDs/s)``; ``delete: stopped after 500 of 2,980 IDs in ...``."""
    rate = f" ({done / seconds:,.0f} {unit}/s)" if seconds > 0 and done else ""
    amount = f"{done:,} {unit}" if done >= total else f"stopped after {done:,} of {total:,} {unit}"
    took = f"{seconds:.2f} s" if seconds < 10 else f"{seconds:,.0f} s"
    return f"{desc}: {amount} in {took}{rate}"


def show(bundle: dict[str, Any], display_id: str) -> None:
    """Display a raw mime bundle under ``display_id`` (``update`` replaces every output that has it)."""
    from IPython import display as ipython_display

    shown: Any = ipython_display.display
    shown(bundle, raw=True, display_id=display_id)


def update(bundle: dict[str, Any], display_id: str) -> None:
    """Replace the outputs shown under ``display_id``, wherever they are (JupyterLab and nbclient keep
    the replacement when the notebook is saved)."""
    from IPython import display as ipython_display

    replace: Any = ipython_display.update_display
    replace(bundle, raw=True, display_id=display_id)


class NotebookBar:
    """A tqdm widget that leaves a static line behind when it closes."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm.notebook import tqdm as widget_tqdm

        self.total, self.desc = total, desc
        self.started = time.monotonic()
        self.display_id = f"leadlex-progress-{next(_display_ids)}-{id(self):x}"
        self._bar = widget_tqdm(total=total, desc=desc, unit=UNIT, leave=True, display=False)
        bundle = {
            "application/vnd.jupyter.widget-view+json": {
                "model_id": self._bar.container.model_id, "version_major": 2, "version_minor": 0},
            "text/plain": f"{desc}: {total:,} IDs ...",
        }
        show(bundle, self.display_id)
        self._closed = False

    def update(self, n: int = 1) -> Any:
        return self._bar.update(n)

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """A note after the rate, as tqdm's: e.g. "waiting for the rate limit until 12:03:05"."""
        self._bar.set_postfix_str(text, refresh=refresh)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bar.close()
        line = done_line(self.desc, int(self._bar.n), self.total, time.monotonic() - self.started)
        html_line = (f"<div style='font-family:var(--jp-code-font-family, monospace);font-size:12px;"
                     f"color:var(--jp-ui-font-color2, #666)'>&#10003; {html.escape(line)}</div>")
        update({"text/plain": line, "text/html": html_line}, self.display_id)


def note(message: str) -> None:
    """A routine note for people (what the run decided): plain stdout in a notebook, where stderr
    would be a red box that reads like an error; stderr in a terminal, to keep stdout for data."""
    print(message, file=sys.stdout if in_kernel() else sys.stderr, flush=True)
