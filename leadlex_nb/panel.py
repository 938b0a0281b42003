"""The notebook's confirm panel as ipywidgets: the plan, ``Delete N contacts``, ``Cancel``, a progress
bar and ``Stop``, then the summary.

The widgets only show and forward clicks: :class:`leadlex_nb.notebook.DeletionRun` owns every
decision. What they show is rendered by :mod:`leadlex_nb.render_plan` and
:mod:`leadlex_nb.render_outcome`; ipywidgets is imported when a panel is built, so a kernel without it
still gets the text display.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from leadlex_nb.hooks import PlanSummary
from leadlex_nb.render_plan import delete_label, plan_html
from leadlex_nb.render_style import BOX, ERROR, esc, number


class PanelProgress:
    """The deletion's progress inside the panel; updated from the run's thread."""

    def __init__(self, panel: ConfirmPanel, total: int, done_label: str = "contacts done") -> None:
        self._panel, self.total, self._label = panel, total, done_label
        self.done = 0
        self.postfix = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        panel.bar.max = max(total, 1)
        panel.bar.value = 0
        self._show()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        self._show()

    def close(self) -> None:
        self._show()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """A note after the counts (tqdm's name), e.g. "waiting for the rate limit until 12:03:05"."""
        self.postfix = text
        self._show()

    def _show(self) -> None:
        seconds = time.monotonic() - self.started
        rate = f", {self.done / seconds:,.0f} IDs/s" if seconds > 0 and self.done else ""
        postfix = f"; {esc(self.postfix)}" if self.postfix else ""
        self._panel.bar.value = min(self.done, self.total)
        self._panel.bar_label.value = (f"<span style='{BOX}'>{number(self.done)} of {number(self.total)} {self._label} "
                                       f"({seconds:,.1f} s{rate}){postfix}</span>")


class ConfirmPanel:
    """The widgets; every button only asks the handle, which decides under its lock."""

    def __init__(self, plan: PlanSummary, *, on_delete: Callable[[], object], on_cancel: Callable[[], object],
                 on_stop: Callable[[], object]) -> None:
        import ipywidgets as widgets  # type: ignore[import-untyped]

        self.plan = plan
        self.plan_view = widgets.HTML(plan_html(plan))
        self.delete_button = widgets.Button(description=delete_label(plan), button_style="danger",
                                            tooltip="Permanently delete the planned contacts",
                                            layout=widgets.Layout(width="auto"))
        self.cancel_button = widgets.Button(description="Cancel", tooltip="Send nothing",
                                            layout=widgets.Layout(width="auto"))
        self._finished = False
        self._updating = threading.Lock()
        self.stop_button = widgets.Button(description="Stop", button_style="warning",
                                          tooltip="Send no new request; those in flight finish and are recorded",
                                          layout=widgets.Layout(width="auto", display="none"))
        self.bar = widgets.IntProgress(value=0, min=0, max=max(plan.to_delete, 1), bar_style="info",
                                       layout=widgets.Layout(width="360px", display="none"))
        self.bar_label = widgets.HTML("")
        self.message = widgets.HTML("")
        self.delete_button.on_click(lambda _button: on_delete())
        self.cancel_button.on_click(lambda _button: on_cancel())
        self.stop_button.on_click(lambda _button: on_stop())
        self.widget = widgets.VBox([
            self.plan_view,
            widgets.HBox([self.delete_button, self.cancel_button]),
            widgets.HBox([self.bar, self.bar_label, self.stop_button]),
            self.message,
        ])

    @property
    def model_id(self) -> str:
        return str(self.widget.model_id)

    def say(self, text: str, *, error: bool = False) -> None:
        style = ERROR if error else ""
        self.message.value = f"<div style='{BOX};{style}'>{esc(text)}</div>"

    def decided(self, confirmed: bool) -> None:
        """Both buttons off at once; on Delete, the progress bar and Stop."""
        with self._updating:  # the run ends on its own thread, perhaps before this click's update
            if not self._finished:
                self._show_decision(confirmed)

    def _show_decision(self, confirmed: bool) -> None:
        self.delete_button.disabled = True
        self.cancel_button.disabled = True
        self.plan_view.value = plan_html(self.plan, decided=True)
        if confirmed:
            self.delete_button.description = "Deleting..."
            self.bar.layout.display = ""
            self.stop_button.layout.display = ""
            self.say("Deleting exactly the planned contacts. Stop sends no new request; those in flight "
                     "finish and are recorded.")
        else:
            self.say("Cancelling: nothing is sent.")

    def progress(self, total: int, desc: str = "delete") -> PanelProgress:
        """The bar of a stage after the decision: the snapshot, then the deletion."""
        return PanelProgress(self, total, "contacts saved to the snapshot" if desc == "snapshot" else "contacts done")

    def stopping(self) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping..."
        self.say("Stopping: no new request goes out; requests in flight finish and are recorded.")

    def finished(self, summary: str) -> None:
        with self._updating:
            self._finished = True
            self._show_summary(summary)

    def _show_summary(self, summary: str) -> None:
        self.delete_button.disabled = self.cancel_button.disabled = self.stop_button.disabled = True
        self.stop_button.layout.display = "none"
        self.bar.bar_style = "success" if self.bar.value >= self.bar.max else "warning"
        self.message.value = summary
