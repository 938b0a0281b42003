"""The typed confirmation prompt for terminals."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING

from leadlex_nb.hooks import PlanSummary

if TYPE_CHECKING:
    from leadlex_nb.restore_plan import RestorePlan


async def ask_in_terminal(summary: PlanSummary) -> bool:
    """Show the plan and ask the user to type the number of contacts to delete.

    Declines when there is no interactive terminal to ask (CI, a Jupyter kernel):
    deleting unasked is what ``confirm=False`` is for.
    """
    return await _ask(summary.describe(), summary.to_delete, "delete", "contacts permanently",
                      "No terminal to confirm in: nothing was deleted. Pass confirm=False to delete this plan "
                      "without asking, or dry_run=True to only look.")


async def ask_to_restore(plan: RestorePlan) -> bool:
    """The same typed prompt for a restore."""
    return await _ask(plan.describe(), plan.to_restore, "re-create", "contacts",
                      "No terminal to confirm in: nothing was created. Pass confirm=False to restore without "
                      "asking, or dry_run=True to only look.")


async def _ask(description: str, count: int, verb: str, what: str, declined: str) -> bool:
    if _in_kernel() or not (sys.stdin and sys.stdin.isatty()):
        print(description, file=sys.stderr)
        print(declined, file=sys.stderr)
        return False
    expected = str(count)
    prompt = f"{description}\nType {expected} to {verb} {expected} {what} (anything else cancels): "
    answer = await _read_line(prompt)
    return answer.strip() == expected


def _in_kernel() -> bool:
    """A Jupyter kernel cannot answer a typed prompt, even when its stdin is a terminal."""
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None) if shell else None
    instance = get_ipython() if get_ipython else None
    return instance is not None and hasattr(instance, "kernel")


async def _read_line(prompt: str) -> str:
    # A daemon thread, so an interrupt (which cancels the run) never waits for Enter.
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            line = input(prompt)
        except Exception:  # EOF, a closed stdin, a frontend that cannot answer: all decline
            line = ""

        def answer() -> None:
            if not future.done():
                future.set_result(line)

        loop.call_soon_threadsafe(answer)

    threading.Thread(target=read, name="leadlex-nb-confirm", daemon=True).start()
    return await future
