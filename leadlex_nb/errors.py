"""The exception tree.

::

    LeadLexError                      base; ``.result`` holds the partial result frame once a run has sent a request
    ├── ConfigurationError            caught before any request: no key, bad URL, bad option (also a ValueError)
    │   └── ColumnNotFoundError       the named column is not in the frame (also a KeyError)
    ├── NothingToDeleteError          the input holds no valid contact ID (also a ValueError)
    ├── AuthenticationError           401 invalid_key: the key is invalid or expired; the run stopped at once
    ├── PermissionDeniedError         403 insufficient_permissions: the key lacks write:contacts; the run stopped
    ├── QuotaError                    the daily quota cannot cover the run, or ran out during it
    ├── ServerUnreachableError        no request of the run could connect to the API; nothing was sent
    ├── ConfirmationDeclined          the user did not confirm the deletion plan; nothing was deleted
    ├── RunInterrupted                KeyboardInterrupt / cancellation; resume with ``leadlex_nb.resume(run_id)``
    ├── SnapshotError                 the snapshot promised before deleting could not be written; nothing deleted
    ├── RestoreError                  a run cannot be restored (unknown id, another key, no snapshot)
    ├── JournalError                  the run journal cannot be written or read (locked, disk full, damaged)
    └── ResumeError                   a run cannot be resumed (unknown id, finished, journal unreadable)

Per-row outcomes are data in the result frame, never exceptions: one bad row or one
failed batch does not raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class LeadLexError(Exception):
    """Base class of every error leadlex-nb raises on purpose."""

    def __init__(self, message: str, *, result: pd.DataFrame | None = None, run_id: str | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.run_id = run_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.result, self.run_id))


def _rebuild(cls: type[LeadLexError], message: str, result: Any, run_id: str | None) -> LeadLexError:
    error = cls.__new__(cls)
    LeadLexError.__init__(error, message, result=result, run_id=run_id)
    return error


class ConfigurationError(LeadLexError, ValueError):
    """A mistake caught before any request was sent."""


class ColumnNotFoundError(ConfigurationError, KeyError):
    """The column named for the contact IDs is not in the frame."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class NothingToDeleteError(LeadLexError, ValueError):
    """The input holds no valid contact ID; nothing was sent."""


class AuthenticationError(LeadLexError):
    """The API answered 401 invalid_key: the key is invalid, revoked or expired."""


class PermissionDeniedError(LeadLexError):
    """The API answered 403 insufficient_permissions."""


class QuotaError(LeadLexError):
    """The daily request quota cannot cover the run, or ran out during it."""

    def __init__(
        self,
        message: str,
        *,
        needed: int | None = None,
        remaining: int | None = None,
        reset_at: float | None = None,
        result: pd.DataFrame | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message, result=result, run_id=run_id)
        self.needed = needed
        self.remaining = remaining
        self.reset_at = reset_at


class ServerUnreachableError(LeadLexError):
    """No request of the run could connect to the API (refused, unknown host, connect timeout)."""


class ConfirmationDeclined(LeadLexError):
    """The deletion plan was not confirmed; nothing was deleted."""


class RunInterrupted(LeadLexError):
    """The run was interrupted; requests in flight were recorded and the run can be resumed."""


class SnapshotError(LeadLexError):
    """The snapshot promised before a deletion could not be saved; nothing was deleted."""


class RestoreError(LeadLexError):
    """A run's contacts cannot be restored (no such run, no snapshot, another key)."""


class JournalError(LeadLexError):
    """The run journal could not be written or read; a run stops rather than send unrecorded requests."""


class ResumeError(LeadLexError):
    """A journaled run cannot be resumed."""
