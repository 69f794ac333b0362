"""A circuit breaker per cache alias and process: a cache that fails (down, refusing, timing
out) is skipped for CACHE_RETRY_INTERVAL seconds, so an outage costs one failed call per
interval and one log line, not one per request."""

from __future__ import annotations

import logging
import threading
import time

from .conf import phoenix_settings

logger = logging.getLogger("phoenix_apikeys")


class Breaker:
    """One per cache alias and process: open after a failure, half-open after the interval."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.down = False
        self.retry_at = 0.0
        self.lock = threading.Lock()

    def allows(self) -> bool:
        return not self.down or time.monotonic() >= self.retry_at

    def failed(self, error: Exception) -> None:
        with self.lock:
            first = not self.down
            self.down = True
            self.retry_at = time.monotonic() + phoenix_settings.CACHE_RETRY_INTERVAL
        if first:
            logger.error(
                "Cache %r failed (%s: %s); API keys are verified in the database until it "
                "answers again.",
                self.alias,
                type(error).__name__,
                error,
            )

    def recovered(self) -> None:
        with self.lock:
            if not self.down:
                return
            self.down = False
        logger.warning("Cache %r answers again; serving API keys from it.", self.alias)
