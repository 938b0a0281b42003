"""Interrupts at seeded random points of a run, then resume: nothing lost, nothing run twice.

Each point interrupts one run (KeyboardInterrupt into a sync call, task cancellation, SIGKILL of
the process, or the panel's Stop) during the dry run, attribution, the confirm hook, a request in
flight, a retry backoff or while pacing holds requests back; see ``interrupt_points``. Points share
a sandbox in chunks (each run seeds its own contacts). ``LEADLEX_SOAK_INTERRUPTS=N`` runs N points
instead of the default, ``LEADLEX_INTERRUPT_SEED`` picks another set.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from interrupt_harness import Outcome, run_point
from interrupt_points import plan_points

from leadlex_nb.sandbox import Profile, Sandbox

DEFAULT_POINTS = 150
POINTS_PER_SANDBOX = 15
TOTAL = int(os.environ.get("LEADLEX_SOAK_INTERRUPTS", DEFAULT_POINTS))
POINTS = plan_points(TOTAL, seed=int(os.environ.get("LEADLEX_INTERRUPT_SEED", "0")))
CHUNKS = [POINTS[i:i + POINTS_PER_SANDBOX] for i in range(0, len(POINTS), POINTS_PER_SANDBOX)]
# Room for every run of a chunk: the per-window limit still answers 429 to bursts now and then.
PROFILE = Profile("interrupts", per_window=200, window_seconds=1.0, daily_quota=10_000_000)
OUTCOMES: list[Outcome] = []


@pytest.mark.timeout(900)
@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_every_interrupt_point_leaves_an_honest_result_and_resume_finishes_the_run(
    chunk: int, tmp_path: Path
) -> None:
    with Sandbox(seed_contacts=0, profile=PROFILE, seed=chunk) as sandbox:
        for point in CHUNKS[chunk]:
            try:
                OUTCOMES.append(run_point(sandbox, point, tmp_path))
            except AssertionError as failure:
                raise AssertionError(f"at {point}: {failure}") from failure


def test_most_points_interrupt_a_run_in_each_kind_and_phase() -> None:
    """The points land: a point whose run ended before its interrupt proves nothing about interrupts."""
    if len(OUTCOMES) < len(POINTS):
        pytest.skip("runs after the points (use the whole file)")
    landed = Counter((o.point.kind, o.point.phase) for o in OUTCOMES if o.interrupted)
    planned = Counter((o.point.kind, o.point.phase) for o in OUTCOMES)
    print("\ninterrupts landed / planned, by kind and phase:")
    for pair in sorted(planned):
        print(f"  {pair[0]:<11}{pair[1]:<12}{landed[pair]:>4} / {planned[pair]}")
    print(f"  total {sum(landed.values())} / {len(OUTCOMES)}; resumed past 24 h: "
          f"{sum(o.aged for o in OUTCOMES)}, with rechecks: {sum(o.rechecks > 0 for o in OUTCOMES)}; "
          f"resumes interrupted too: {sum(o.resume_interrupted for o in OUTCOMES)}")
    print("  last request class before the interrupt:", dict(Counter(o.hit for o in OUTCOMES if o.interrupted)))
    assert sum(landed.values()) >= 0.8 * len(OUTCOMES)
    assert all(landed[pair] > 0 for pair in planned), f"never landed: {set(planned) - set(landed)}"
