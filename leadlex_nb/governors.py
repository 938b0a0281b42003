"""One rate governor per API key and server for the runs that use it at the same time.

Two cells or two confirm panels deleting with one key would otherwise each pace to the whole
limit and answer each other's requests with 429s. A governor lives while a run uses it: once the
last run with its key ends, what it learned goes with it, so the next run asks the server afresh
(a transient burst of 429s never slows later runs).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from leadlex_nb.limits import RateLimit
from leadlex_nb.pacing import RateGovernor

__all__ = ["shared_governor"]

_lock = threading.Lock()
_governors: dict[tuple[str, str], tuple[RateGovernor, int]] = {}  # the governor and its runs


@contextlib.contextmanager
def shared_governor(base_url: str, key_fingerprint: str, limit: RateLimit | None,
                    learn_window: float) -> Iterator[RateGovernor]:
    """The governor of this key on this server while the ``with`` block runs.

    Keyed by the key's fingerprint, never the key. A run that names a plan sets the shared pace
    to it; a run without one paces to what the governor already knows. The daily quota is learned
    afresh from the joining run's first answer.
    """
    key = (base_url, key_fingerprint)
    with _lock:
        governor, users = _governors.get(key, (None, 0))
        joined = governor is not None
        if governor is None:
            governor = RateGovernor(limit, learn_window=learn_window)
        _governors[key] = (governor, users + 1)
    if joined:
        if limit is not None:
            governor.name_limit(limit)
        governor.forget_quota()
    try:
        yield governor
    finally:
        with _lock:
            governor, users = _governors[key]
            if users > 1:
                _governors[key] = (governor, users - 1)
            else:
                del _governors[key]
