"""Failed authentications counted per client address, so guessing keys is throttled.

Counts live in THROTTLE_CACHE_ALIAS (shared by every process when it is Redis; a per-process
cache still throttles, each process on its own). Past FAILED_AUTH_LIMIT failures within
FAILED_AUTH_WINDOW seconds an address is refused before any database query. It fails open: with
the cache unreachable nothing is counted or refused, while authentication itself still fails
closed.

Leak reports (the revocation route that needs no credential) are counted the same way, in their
own namespace, against LEAK_REVOCATION_LIMIT per FAILED_AUTH_WINDOW: every report counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import BaseCache

from . import cache
from .conf import phoenix_settings

_NAMESPACE = "phoenix_apikeys:failures:"
_LEAK_NAMESPACE = "phoenix_apikeys:leak-reports:"


class TooManyFailures(Exception):
    """The address failed too often; ``retry_after`` is in seconds."""

    def __init__(
        self,
        retry_after: int,
        message: str = "Too many failed authentications from your address.",
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _limits() -> tuple[str | None, int, int]:
    alias = phoenix_settings.THROTTLE_CACHE_ALIAS
    limit = phoenix_settings.FAILED_AUTH_LIMIT
    return (alias if limit else None), int(limit or 0), int(phoenix_settings.FAILED_AUTH_WINDOW)


# The client's address, or a function that finds it (only when a throttle needs it).
Source = str | Callable[[], str | None] | None


def address_of(source: Source) -> str | None:
    return source() if callable(source) else source


def refuse_if_blocked(source: Source) -> None:
    """Before a database query: raise TooManyFailures for an address past the limit."""
    alias, limit, window = _limits()
    address = address_of(source) if alias is not None else None
    if address is None or alias is None:
        return
    count = cache.guarded(alias, lambda backend: backend.get(_NAMESPACE + address), None)
    if isinstance(count, int) and count >= limit:
        raise TooManyFailures(window)


def count_failure(source: Source) -> None:
    """Count one failure; raise TooManyFailures once the address is past the limit."""
    alias, limit, window = _limits()
    address = address_of(source) if alias is not None else None
    if address is None or alias is None:
        return
    count = cache.guarded(alias, lambda backend: _increment(backend, address, window), None)
    if count is not None and count > limit:
        raise TooManyFailures(window)


def count_leak_report(source: Source) -> None:
    """Count one leak report; raise TooManyFailures once the address is past
    LEAK_REVOCATION_LIMIT within FAILED_AUTH_WINDOW. Fails open, as failures do."""
    alias = phoenix_settings.THROTTLE_CACHE_ALIAS
    limit = phoenix_settings.LEAK_REVOCATION_LIMIT
    address = address_of(source) if alias is not None and limit else None
    if address is None or alias is None:
        return
    window = int(phoenix_settings.FAILED_AUTH_WINDOW)
    count = cache.guarded(
        alias, lambda backend: _increment(backend, address, window, _LEAK_NAMESPACE), None
    )
    if count is not None and count > int(limit):
        raise TooManyFailures(window, "Too many leak reports from your address.")


def _increment(backend: BaseCache, source: str, window: int, namespace: str = _NAMESPACE) -> Any:
    name = namespace + source
    backend.add(name, 0, window)  # the window starts at the first failure
    try:
        return backend.incr(name)
    except ValueError:  # expired between add and incr
        backend.set(name, 1, window)
        return 1
