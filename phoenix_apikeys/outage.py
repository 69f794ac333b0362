"""When the database cannot be asked: never a yes, one log line per outage, and a hint when
the app's tables are missing."""

from __future__ import annotations

import logging
import re

from django.db import OperationalError, ProgrammingError
from django.utils.translation import gettext

logger = logging.getLogger("phoenix_apikeys")

# Seconds a client is told to wait when the database cannot be asked.
RETRY_AFTER_UNAVAILABLE = 5


class VerificationUnavailable(Exception):
    """The database could not be asked: the answer is 503 with Retry-After, never a yes."""

    retry_after = RETRY_AFTER_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            gettext("API keys cannot be verified right now: the database is unavailable.")
        )


_database_down = False


def database_failed(error: Exception) -> None:
    """One log line per outage, not one per request."""
    global _database_down
    if not _database_down:
        _database_down = True
        logger.error(
            "Database unavailable (%s: %s); API keys not in the cache answer 503 until it "
            "returns.%s",
            type(error).__name__,
            error,
            migrate_hint(error),
        )


def database_answered() -> None:
    global _database_down
    if _database_down:
        _database_down = False
        logger.warning("Database answers again; API keys are verified as usual.")


# How PostgreSQL, SQLite, MySQL and Oracle say that a table or column is not there.
_NOT_MIGRATED = re.compile(
    r"no such (table|column)|does not exist|doesn't exist|unknown column|ORA-00942|ORA-00904",
    re.IGNORECASE,
)


def migrate_hint(error: Exception) -> str:
    """For a database that answers but lacks our tables or columns: what to run."""
    if isinstance(error, (ProgrammingError, OperationalError)) and _NOT_MIGRATED.search(str(error)):
        return " A table or column is missing: run `manage.py migrate`."
    return ""
