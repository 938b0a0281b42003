"""One rate governor per API key and server in a process: runs that share a key share its limits.

Two cells or two confirm panels deleting with one key would otherwise each pace to the whole
limit and answer each other's requests with 429s. The registry holds governors weakly: once no
run uses a key, its learned pace is forgotten with it.
"""

from __future__ import annotations

import threading
import weakref

from leadlex_nb.limits import RateLimit
from leadlex_nb.pacing import RateGovernor

__all__ = ["shared_governor"]

_lock = threading.Lock()
_governors: weakref.WeakValueDictionary[tuple[str, str], RateGovernor] = weakref.WeakValueDictionary()


def shared_governor(base_url: str, key_fingerprint: str, limit: RateLimit | None, learn_window: float) -> RateGovernor:
    """The governor of this key on this server, made on first use.

    Keyed by the key's fingerprint, never the key. A run that names a plan sets the shared pace
    to it; a run without one paces to what the governor already knows.
    """
    with _lock:
        governor = _governors.get((base_url, key_fingerprint))
        if governor is None:
            governor = RateGovernor(limit, learn_window=learn_window)
            _governors[(base_url, key_fingerprint)] = governor
        elif limit is not None:
            governor.name_limit(limit)
        return governor
