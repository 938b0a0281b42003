"""The confirm panel's renderers and widgets, without a kernel or a browser."""

from __future__ import annotations

import html
import re

import pandas as pd

from leadlex_nb import panel, render_outcome, render_plan
from leadlex_nb.hooks import PlanSummary
from leadlex_nb.progress import done_line

HOSTILE = "<script>alert('x')</script>"


def dry_run_frame() -> pd.DataFrame:
    rows = (
        [("would_delete", None, None, False)] * 5
        + [("not_found", None, None, False)] * 2
        + [("error", "contact_locked", HOSTILE, False)]
        + [("invalid", "invalid_id", "not a UUID: 'n/a'", False)] * 4
        + [("would_delete", None, None, True)] * 2
    )
    frame = pd.DataFrame(rows, columns=["status", "error_code", "error_message", "duplicate"],
                         index=pd.RangeIndex(100, 100 + len(rows)))
    frame.insert(0, "contact_id", [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(rows))])
    return frame


def make_plan(**overrides: object) -> PlanSummary:
    fields: dict[str, object] = dict(
        run_id="run123", rows=14, unique_ids=8, counts={"would_delete": 2980, "not_found": 2, "error": 1},
        to_delete=2980, unresolved=0, delete_requests=6, fingerprint="ab" * 32, quota_remaining=9_994,
        quota_reset_at=1_790_000_000.0, notes=("attribution: 2 missing ID(s); strategy 'export'",),
        dry_run_result=dry_run_frame(),
    )
    fields.update(overrides)
    return PlanSummary(**fields)  # type: ignore[arg-type]


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def test_the_delete_label_formats_n_as_the_counts_do() -> None:
    assert render_plan.delete_label(make_plan()) == "Delete 2,980 contacts"
    assert render_plan.delete_label(make_plan(to_delete=1)) == "Delete 1 contact"
    assert "2,980" in text_of(render_plan.plan_html(make_plan()))


def test_the_plan_counts_each_kind_the_issue_names() -> None:
    counts = render_plan.plan_counts(make_plan())
    assert counts == {"would_delete": 2980, "not_found": 2, "error": 1, "invalid": 4, "duplicate": 2}
    shown = text_of(render_plan.plan_html(make_plan()))
    for label in ("would delete", "not found", "refused by the API", "invalid, never sent", "repeated rows"):
        assert label in shown
    assert render_plan.plan_counts(make_plan(counts={}, to_delete=0, dry_run_result=None)) == {"would_delete": 0}


def test_samples_are_a_few_rows_of_each_kind_with_the_input_index() -> None:
    samples = render_plan.plan_samples(make_plan())
    assert {k: len(v) for k, v in samples.items()} == {"would_delete": 3, "not_found": 2, "error": 1, "invalid": 3,
                                                      "duplicate": 2}
    assert list(samples["would_delete"].index) == [100, 101, 102]
    assert "00000000-0000-4000-8000-000000000007" in render_plan.plan_html(make_plan())  # the error row's ID


def test_values_from_the_network_and_the_frame_are_escaped() -> None:
    markup = render_plan.plan_html(make_plan())
    assert HOSTILE not in markup and html.escape(HOSTILE, quote=True) in markup


def test_the_plan_shows_quota_fingerprint_notes_and_the_permanence_warning() -> None:
    shown = text_of(render_plan.plan_html(make_plan()))
    assert "The deletion uses 6 requests of the 9,994 left in today's quota, resets 2026-09-21 " in shown
    assert "abababababababab" in shown and "ab" * 17 not in shown
    assert "strategy 'export'" in shown
    assert "Deletion is permanent" in shown
    unknown = text_of(render_plan.plan_html(make_plan(quota_remaining=None, quota_reset_at=None)))
    assert "did not report the daily quota" in unknown


def test_the_text_panel_says_what_to_do_without_widgets() -> None:
    text = render_plan.plan_text(make_plan())
    assert "NOTHING HAS BEEN DELETED" in text
    assert "run.confirm()" in text and "run.cancel()" in text and "confirm=False" in text
    assert "Delete 2,980 contacts" in text


def result_frame() -> pd.DataFrame:
    statuses = ["deleted"] * 6 + ["not_found"] * 2 + ["error", "invalid", "not_sent", "unknown"]
    frame = pd.DataFrame({"contact_id": [f"id{i}" for i in range(len(statuses))], "status": statuses,
                          "duplicate": [False] * 5 + [True] + [False] * 6})
    frame.attrs["leadlex"] = {"run_id": "run123", "requests": {"dry_run": 2, "attribution": 0, "delete": 3},
                              "wall_seconds": 12.5}
    return frame


def test_the_summary_counts_statuses_draws_a_bar_and_says_how_to_read_the_result() -> None:
    markup = render_outcome.summary_html("finished", result_frame(), plan=make_plan(), deletion_seconds=1.234)
    shown = text_of(markup)
    assert "Done: 5 contacts deleted." in shown  # unique contacts: the repeated row is not counted twice
    assert "1 repeated row shares its ID's status" in shown
    assert "deleted 6" in shown and "unknown 1" in shown and "gone" not in shown  # zeros left out
    assert markup.count("flex:") == 6  # one bar segment per status that occurs
    assert "Used 5 requests (dry run 2, delete 3); deletion 1.23 s after the decision, whole run 12 s." in shown
    assert "run.result.status.value_counts()" in shown
    assert "leadlex_nb.resume('run123')" in shown  # unknown rows: resume settles them
    assert "Plan abababababababab: 2,980 contacts to delete, confirmed." in shown


def test_cancel_and_stop_summaries_say_what_happened() -> None:
    cancelled = render_outcome.summary_text("cancelled", result_frame(), plan=make_plan())
    assert cancelled.startswith("Cancelled: nothing was sent, nothing was deleted.")
    assert "not confirmed" in cancelled
    stopped = render_outcome.summary_text("stopped", result_frame(), error=RuntimeError("quota ran out"))
    assert stopped.startswith("Stopped: quota ran out")


def test_percentages_never_round_a_real_count_to_zero() -> None:
    assert (render_outcome.percent(1, 1000) == "<1%" and render_outcome.percent(0, 10) == "0%"
            and render_outcome.percent(5, 10) == "50%")


def test_a_finished_progress_bar_leaves_a_line_that_says_what_was_done() -> None:
    assert done_line("dry run", 2980, 2980, 1.4) == "dry run: 2,980 IDs in 1.40 s (2,129 IDs/s)"
    assert done_line("delete", 500, 2980, 12.0) == "delete: stopped after 500 of 2,980 IDs in 12 s (42 IDs/s)"


def test_the_widgets_disable_both_buttons_on_the_first_decision_and_show_stop() -> None:
    clicks: list[str] = []
    view = panel.ConfirmPanel(make_plan(), on_delete=lambda: clicks.append("delete"),
                              on_cancel=lambda: clicks.append("cancel"), on_stop=lambda: clicks.append("stop"))
    assert view.delete_button.description == "Delete 2,980 contacts"
    assert view.cancel_button.description == "Cancel"
    assert view.stop_button.layout.display == "none"
    view.delete_button.click()
    assert clicks == ["delete"]
    view.decided(True)
    assert view.delete_button.disabled and view.cancel_button.disabled
    assert view.stop_button.layout.display == "" and not view.stop_button.disabled
    bar = view.progress(2980)
    bar.update(500)
    assert view.bar.value == 500 and "500 of 2,980 contacts done" in view.bar_label.value
    bar.set_postfix_str("waiting for the rate limit until 12:03:05")
    assert "waiting for the rate limit until 12:03:05" in view.bar_label.value
    assert "Deletion is permanent" not in view.plan_view.value  # decided: the warning has done its job
    assert "Nothing has been deleted yet" not in view.plan_view.value
    view.stopping()
    assert view.stop_button.disabled
