"""``Sandbox``: the server on its own thread and event loop, driven from sync or async code."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import make_app
from .auth import DEFAULT_SCOPES, KeyRing
from .execlog import ExecutionLog
from .fakes import fake_contacts
from .faults import FaultInjector, Faults
from .idempotency import IdempotencyStore
from .profiles import Profile, resolve_profile
from .ratelimit import RateLimiter
from .state import SandboxState
from .store import Store
from .webhooks import Webhooks

HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT = 0.5  # requests still running at stop (slow faults) are cut short


class Sandbox:
    """A local LeadLex API on 127.0.0.1.

    ``with Sandbox(seed_contacts=1000) as sb: requests.post(sb.base_url + "/v1/...", ...)``
    """

    def __init__(self, seed_contacts: int = 1000, profile: Profile | str = "fast",
                 faults: Faults | None = None, db_path: str | None = None, port: int = 0,
                 seed: int = 0) -> None:
        self._port = port
        self._seed_contacts = seed_contacts
        keys = KeyRing()
        self.api_key: str = keys.create(DEFAULT_SCOPES, label="default")
        limiter = RateLimiter(resolve_profile(profile))
        self._state = SandboxState(
            store=Store(db_path), keys=keys, limiter=limiter, faults=FaultInjector(faults),
            idempotency=IdempotencyStore(), log=ExecutionLog(),
            webhooks=Webhooks("ws_sandbox", lambda: limiter.profile.time_scale),
            rng=random.Random(seed))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._closed = False

    def __repr__(self) -> str:  # never shows the key
        state = f"serving {self.base_url}" if self._bound_port else "stopped"
        return f"<Sandbox {state} profile={self._state.profile.name!r}>"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._thread is not None:
            return self
        if self._closed:
            raise RuntimeError("a stopped Sandbox cannot be restarted; create a new one")
        if self._seed_contacts:
            self.seed(self._seed_contacts)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure),
                                        name="leadlex-sandbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            if not self._closed:
                self._closed = True
                self._state.store.close()
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None
        self._bound_port = None
        self._closed = True
        self._state.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # e.g. port in use: report to start()
                failure.append(exc)
                ready.set()
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
                return
            ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(make_app(self._state), access_log=None,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self._port)
        await site.start()
        addresses = self._runner.addresses  # the bound port is only known after start
        assert addresses
        self._bound_port = int(addresses[0][1])

    # -- addresses and keys ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the sandbox is not running")
        return self._bound_port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def create_key(self, scopes: Sequence[str] = DEFAULT_SCOPES, expired: bool = False) -> str:
        return self._state.keys.create(list(scopes), expired=expired)

    def revoke_key(self, key: str) -> None:
        """Revoke a key mid-run: its next request gets 401 invalid_key."""
        self._state.keys.revoke(key)

    def reinstate_key(self, key: str) -> None:
        """Undo ``revoke_key`` (or a ``Faults(revoke_after=...)`` revocation): the key works again."""
        self._state.keys.reinstate(key)

    # -- data -----------------------------------------------------------------------------------

    def seed(self, n: int) -> list[str]:
        with self._state.rng_lock:
            rows = fake_contacts(self._state.rng, n)
        return self._state.store.insert(rows)

    def delete_contacts(self, ids: Iterable[str]) -> list[str]:
        """Delete contacts as another client would, outside the API: no log entry, no webhook.

        Returns the IDs that were deleted (locked ones stay)."""
        wanted = list(dict.fromkeys(i.lower() for i in ids))
        deleted, _, _ = self._state.store.bulk_delete(wanted, dry_run=False)
        return deleted

    def protect(self, ids: Iterable[str]) -> None:
        self._state.store.protect(ids)

    def existing_ids(self) -> set[str]:
        return self._state.store.existing_ids()

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        """The stored contact (store column names), or None."""
        return self._state.store.get(contact_id.lower())

    def contacts(self) -> list[dict[str, Any]]:
        """Every stored contact, oldest first."""
        return self._state.store.export(limit=-1, created_after=None, created_before=None, tags=())

    def execution_log(self, since: int = 0) -> list[dict[str, Any]]:
        """One entry per request, in arrival order; ``since=n`` skips the first ``n``."""
        return self._state.log.snapshot(since)

    def clear_execution_log(self) -> None:
        """Forget the entries so far (each holds its request's IDs): a long run of big jobs, such as a
        benchmark's, would otherwise keep every ID it was ever sent."""
        self._state.log.clear()

    @property
    def log_length(self) -> int:
        """How many requests the execution log holds: pass it as ``since`` to see only later ones."""
        return len(self._state.log)

    # -- behaviour ------------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        return self._state.profile

    def set_faults(self, faults: Faults | None) -> None:
        """Replace fault injection; its seed and schedule start over."""
        self._state.faults.reset(faults)

    def set_profile(self, profile: Profile | str) -> None:
        """Replace the rate limits and reset all counters."""
        self._state.limiter.set_profile(resolve_profile(profile))

    def drain_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until no webhook delivery is queued or awaiting a retry; False on timeout."""
        if self._loop is None or self._thread is None:
            return True
        future = asyncio.run_coroutine_threadsafe(self._state.webhooks.drain(timeout), self._loop)
        return future.result(timeout + 1.0)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
