"""leadlex-nb: delete LeadLex CRM contacts in bulk, safely and fast, from pandas.

Importing the package registers the ``leadlex`` accessor on DataFrame and Series::

    import leadlex_nb
    result = df.leadlex.bulk_delete("contact_id")
"""

__version__ = "0.1.0"

from leadlex_nb import accessor as _accessor  # noqa: E402,F401  (registers .leadlex)
from leadlex_nb.api import abulk_delete, aresume, bulk_delete, journaled_runs, resume  # noqa: E402
from leadlex_nb.errors import (  # noqa: E402
    AuthenticationError,
    ColumnNotFoundError,
    ConfigurationError,
    ConfirmationDeclined,
    LeadLexError,
    NothingToDeleteError,
    PermissionDeniedError,
    QuotaError,
    ResumeError,
    RunInterrupted,
)
from leadlex_nb.pacing import RateLimit  # noqa: E402
from leadlex_nb.results import STATUSES  # noqa: E402
from leadlex_nb.retry import RetryPolicy  # noqa: E402
from leadlex_nb.runner import PlanSummary  # noqa: E402

__all__ = [
    "AuthenticationError",
    "ColumnNotFoundError",
    "ConfigurationError",
    "ConfirmationDeclined",
    "LeadLexError",
    "NothingToDeleteError",
    "PermissionDeniedError",
    "PlanSummary",
    "QuotaError",
    "RateLimit",
    "ResumeError",
    "RetryPolicy",
    "RunInterrupted",
    "STATUSES",
    "abulk_delete",
    "aresume",
    "bulk_delete",
    "journaled_runs",
    "resume",
]
