"""Every default setting, in one place: the API, the settings, the retry policy, the environment.

Imports nothing from the package, so any module can read its defaults from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

DEFAULT_BASE_URL: Final = "https://data.leadlex.com/functions/v1/api-gateway"
ENV_API_KEY: Final = "LEADLEX_API_KEY"
ENV_BASE_URL: Final = "LEADLEX_BASE_URL"
ENV_JOURNAL: Final = "LEADLEX_JOURNAL"

DEFAULT_BATCH_SIZE: Final = 500
# Requests in flight: None sizes them from the rate limit (see pacing.RateGovernor.suggested_in_flight).
DEFAULT_CONCURRENCY: Final = None
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
# Requests the run may spend on pinning down which IDs of a batch are missing.
DEFAULT_ATTRIBUTION_BUDGET: Final = 100
# The longest the API's unadvertised rate window can be (the docs say per minute); shorter
# windows are learned from when requests get through again after a 429.
DEFAULT_RATE_WINDOW_SECONDS: Final = 60.0

# Retries: attempts per batch (the first included), full-jitter backoff, retries per run.
DEFAULT_MAX_ATTEMPTS: Final = 8
DEFAULT_BASE_DELAY: Final = 0.5
DEFAULT_MAX_DELAY: Final = 30.0
DEFAULT_RETRY_BUDGET: Final = 200

# The command line: the column of contact IDs read from a CSV or Parquet file.
DEFAULT_ID_COLUMN: Final = "contact_id"


def package_version() -> str:
    """The installed version, from the package metadata (the one place it is written)."""
    try:
        return version("leadlex-nb")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
