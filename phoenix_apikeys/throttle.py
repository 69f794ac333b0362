"""Failed authentications counted per client address, so guessing keys is throttled.

Each process tallies failures in its own memory and adds them to the shared count in
THROTTLE_CACHE_ALIAS in batches, so a refusal costs no network round trip in the common case.
A batch is added at an address's first failure in this process, then at most a tenth of a second
after the last one while failures keep coming, and at every failure once the address is past
half the limit. So
- a process refuses, before any database query, an address whose count it knows is past
  FAILED_AUTH_LIMIT within FAILED_AUTH_WINDOW seconds;
- a process that has not yet seen an address learns the shared count at that address's first
  failure there (one query spent, then 429);
- failures not yet added (under half the limit, less than FLUSH_INTERVAL old) are what another
  process cannot see: across P processes an address gets past the limit by at most what P
  processes take from it in FLUSH_INTERVAL (and never by more than P * FAILED_AUTH_LIMIT / 2).
With the shared cache unreachable each process keeps counting on its own, and authentication
itself still fails closed.

Leak reports (the revocation route that needs no credential) are counted in the shared cache at
every report, in their own namespace, against LEAK_REVOCATION_LIMIT per FAILED_AUTH_WINDOW.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache
from django.utils.translation import gettext, ngettext

from . import cache
from .conf import phoenix_settings

logger = logging.getLogger("phoenix_apikeys")
_NAMESPACE = "phoenix_apikeys:failures:"
_LEAK_NAMESPACE = "phoenix_apikeys:leak-reports:"
# Seconds a batch of failures may wait in this process before it is added to the shared count.
FLUSH_INTERVAL = 0.1
# Addresses tallied at once per process; past it the oldest tally is dropped.
MAX_TALLIES = 10_000


class TooManyFailures(Exception):
    """The address failed too often; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        if message is None:
            message = gettext("Too many failed authentications from your address.")
        super().__init__(message)
        self.retry_after = retry_after


def retry_detail(error: Any) -> str:
    """What a client refused for a while (429, 503; ``error.retry_after`` seconds) is told:
    why, and when to retry."""
    return ngettext(
        "%(reason)s Retry in %(seconds)d second.",
        "%(reason)s Retry in %(seconds)d seconds.",
        error.retry_after,
    ) % {"reason": error, "seconds": error.retry_after}


@dataclass
class _Tally:
    """One address's failures as this process knows them, for one window."""

    ends: float  # time.monotonic() when this process's view of the window ends
    shared: int = 0  # the shared count when this process last added to it
    pending: int = 0  # counted here, not yet added
    added: float | None = None  # time.monotonic() of the last addition; None: never

    @property
    def known(self) -> int:
        return self.shared + self.pending


_tallies: dict[str, _Tally] = {}
_lock = threading.Lock()


def forget() -> None:
    """Drop this process's tallies (a forked child starts without its parent's)."""
    with _lock:
        _tallies.clear()


os.register_at_fork(after_in_child=forget)


def _limits() -> tuple[str | None, int, int]:
    alias = phoenix_settings.THROTTLE_CACHE_ALIAS
    limit = phoenix_settings.FAILED_AUTH_LIMIT
    return (alias if limit else None), int(limit or 0), int(phoenix_settings.FAILED_AUTH_WINDOW)


# The client's address, or a function that finds it (only when a throttle needs it).
Source = str | Callable[[], str | None] | None


def address_of(source: Source) -> str | None:
    return source() if callable(source) else source


def refuse_if_blocked(source: Source) -> None:
    """Before a database query: raise TooManyFailures for an address this process knows is
    past the limit. No round trip: only this process's tally is read."""
    alias, limit, window = _limits()
    address = address_of(source) if alias is not None else None
    if address is None:
        return
    tally = _tallies.get(address)
    if tally is not None and tally.ends > time.monotonic() and tally.known >= limit:
        raise TooManyFailures(window)


def count_failure(source: Source) -> None:
    """Count one failure; raise TooManyFailures once the address is past the limit."""
    alias, limit, window = _limits()
    address = address_of(source) if alias is not None else None
    if address is None or alias is None:
        return
    now = time.monotonic()
    with _lock:
        tally = _tallies.get(address)
        if tally is None or tally.ends <= now:
            tally = _tallies[address] = _Tally(ends=now + window)
            _bound(now)
        tally.pending += 1
        due = tally.added is None or now - tally.added >= FLUSH_INTERVAL or 2 * tally.known >= limit
        batch = tally.pending if due else 0
        if due:
            tally.pending, tally.added = 0, now
    if batch:
        shared = cache.guarded(alias, lambda backend: _add(backend, address, batch, window), None)
        with _lock:
            if shared is None:  # unreachable: this process keeps the count on its own
                tally.pending += batch
            else:
                tally.shared = max(tally.shared + batch, int(shared))
    if tally.known > limit:
        raise TooManyFailures(window)


def _bound(now: float) -> None:
    """Keep at most MAX_TALLIES addresses: ended windows go first, then the oldest."""
    if len(_tallies) <= MAX_TALLIES:
        return
    for address in [address for address, tally in _tallies.items() if tally.ends <= now]:
        del _tallies[address]
    while len(_tallies) > MAX_TALLIES:
        del _tallies[next(iter(_tallies))]


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
        alias, lambda backend: _add(backend, address, 1, window, _LEAK_NAMESPACE), None
    )
    if count is not None and count > int(limit):
        raise TooManyFailures(window, gettext("Too many leak reports from your address."))


def _add(
    backend: BaseCache, source: str, amount: int, window: int, namespace: str = _NAMESPACE
) -> Any:
    name = namespace + source
    backend.add(name, 0, window)  # the window starts at the first failure
    try:
        return backend.incr(name, amount)
    except ValueError:  # expired between add and incr
        backend.set(name, amount, window)
        return amount


# Failed authentications logged one by one, up to this many a second per process; a flood of
# them is summed up in the next line logged, so guessing can fill neither the log nor the time
# of a refusal. A failure that names a stored key (expired, its owner inactive) is always
# logged: it cost a database query, which the throttle bounds per address, and a flood of
# malformed text must not hide it. An address the throttle refuses is not logged at all.
FAILURE_LINES_PER_SECOND = 10


class _FailureLog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.second = -1.0  # time.monotonic() when the current second began
        self.lines = 0  # lines logged in it
        self.unlogged = 0  # failures not logged since the last line

    def write(self, error: Any) -> None:
        """Log ``error`` (a verification.CredentialRejected: ``reason``, ``key_id``)."""
        now = time.monotonic()
        with self.lock:
            if now - self.second >= 1.0:
                self.second, self.lines = now, 0
            if self.lines >= FAILURE_LINES_PER_SECOND and error.key_id is None:
                self.unlogged += 1
                return
            self.lines += 1
            unlogged, self.unlogged = self.unlogged, 0
        reason = error.reason
        if unlogged:
            logger.warning(
                "Authentication failed: %s (and %d earlier failures, not logged one by one).",
                reason,
                unlogged,
            )
        else:
            logger.warning("Authentication failed: %s.", reason)


_failure_log = _FailureLog()
log_failure = _failure_log.write
