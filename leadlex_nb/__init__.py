"""leadlex-nb: delete LeadLex CRM contacts in bulk, safely and fast, from pandas.

Importing the package registers the ``leadlex`` accessor on DataFrame and Series::

    import leadlex_nb
    result = df.leadlex.bulk_delete("contact_id")
"""

from leadlex_nb.defaults import package_version as _package_version

__version__ = _package_version()

from leadlex_nb import accessor as _accessor  # noqa: F401  (registers .leadlex)
from leadlex_nb.api import abulk_delete, aresume, bulk_delete, journaled_runs, resume
from leadlex_nb.errors import (
    AuthenticationError,
    ColumnNotFoundError,
    ConfigurationError,
    ConfirmationDeclined,
    JournalError,
    LeadLexError,
    NothingToDeleteError,
    PermissionDeniedError,
    QuotaError,
    RestoreError,
    ResumeError,
    RunInterrupted,
    ServerUnreachableError,
    SnapshotError,
)
from leadlex_nb.hooks import PlanSummary, StopSignal
from leadlex_nb.limits import RateLimit
from leadlex_nb.notebook import DeletionRun, ResultPending
from leadlex_nb.restore import arestore, restore, snapshot_of
from leadlex_nb.results import STATUSES
from leadlex_nb.retry import RetryPolicy

__all__ = [
    "STATUSES",
    "AuthenticationError",
    "ColumnNotFoundError",
    "ConfigurationError",
    "ConfirmationDeclined",
    "DeletionRun",
    "JournalError",
    "LeadLexError",
    "NothingToDeleteError",
    "PermissionDeniedError",
    "PlanSummary",
    "QuotaError",
    "RateLimit",
    "RestoreError",
    "ResultPending",
    "ResumeError",
    "RetryPolicy",
    "RunInterrupted",
    "ServerUnreachableError",
    "SnapshotError",
    "StopSignal",
    "abulk_delete",
    "arestore",
    "aresume",
    "bulk_delete",
    "journaled_runs",
    "restore",
    "resume",
    "snapshot_of",
]
