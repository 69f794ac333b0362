"""The optional cache of verified keys: an accelerator shared by every serving process, never a
dependency.

Every entry is stamped with the cache's generation, a random token that each revocation replaces
(at once, and again after its transaction commits). A hit counts only while its stamp is the
current generation, so a key that a concurrent request read from the database before a
revocation committed, and stored after it, is never served. Only found keys are cached, never a
miss, so an attacker cannot fill the cache. A per-process cache (local memory) cannot see a
revocation made by another process, so it is never used: the database path serves instead.

A cache that fails (down, refusing, timing out) is skipped by this process for
CACHE_RETRY_INTERVAL seconds, so an outage costs one failed call per interval. When it answers
again the generation is renewed first: revocations made while it was unreachable could not
retire their entries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.utils.crypto import get_random_string

from .conf import phoenix_settings

logger = logging.getLogger("phoenix_apikeys")
T = TypeVar("T")

_NAMESPACE = "phoenix_apikeys:"
GENERATION = _NAMESPACE + "generation"
SYSTEM_USER = _NAMESPACE + "system-user"
# Aliases already reported as per-process, so the log says it once per process, not per request.
_refused: set[str] = set()
_unknown: set[str] = set()


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


_breakers: dict[str, Breaker] = {}


def guarded(
    alias: str | None, operation: Callable[[BaseCache], T], default: T, *, force: bool = False
) -> T:
    """Run ``operation`` on the cache ``alias`` unless its breaker is open (``force`` tries
    anyway); ``default`` on any failure, which opens the breaker."""
    if not alias or not _configured(alias):
        return default
    breaker = _breakers.setdefault(alias, Breaker(alias))
    if not force and not breaker.allows():
        return default
    cache = caches[alias]
    try:
        if breaker.down and alias == _key_cache_alias():
            # Revocations made during the outage could not retire their entries: retire them
            # all before trusting anything read from this cache again.
            _set_generation(cache)
        result = operation(cache)
    except Exception as error:  # any backend's errors: the cache is only an accelerator
        breaker.failed(error)
        return default
    breaker.recovered()
    return result


@dataclass(frozen=True)
class Entry:
    """What a request found: the cached value (or None), the generation to stamp a store with,
    and when the value was last read from the database (kept when it is stored again)."""

    value: Any = None
    generation: str | None = None
    verified_at: float | None = None


def is_per_process(cache: BaseCache) -> bool:
    return isinstance(cache, LocMemCache)


def _configured(alias: str) -> bool:
    """An alias missing from CACHES (check E025) is no cache: one logged error, never a 500."""
    if alias in settings.CACHES:
        return True
    if alias not in _unknown:
        _unknown.add(alias)
        logger.error(
            "Cache alias %r is not in CACHES, so it is not used (run `manage.py check`).", alias
        )
    return False


def _key_cache_alias() -> str | None:
    alias: str | None = phoenix_settings.CACHE_ALIAS
    if not alias or not _configured(alias):
        return None
    if not is_per_process(caches[alias]):
        return alias
    if alias not in _refused:
        _refused.add(alias)
        logger.error(
            "CACHE_ALIAS %r is a per-process cache: other processes could not revoke the keys "
            "it holds, so keys are verified in the database. Use a shared cache (Redis).",
            alias,
        )
    return None


def key_name(digest: str) -> str:
    return _NAMESPACE + digest


def read(name: str) -> Entry:
    """One round trip: the entry and the current generation together."""
    return guarded(_key_cache_alias(), lambda cache: _read(cache, name), Entry())


def _read(cache: BaseCache, name: str) -> Entry:
    found = cache.get_many([name, GENERATION])
    generation = found.get(GENERATION)
    if generation is None:  # first use, or evicted: start one; whoever adds first wins
        cache.add(GENERATION, _new_generation(), None)
        return Entry(generation=cache.get(GENERATION))
    if _rolled_back(generation):
        # A restored snapshot or a lagging replica brought back a retired generation, and with
        # it entries that revocations had retired: retire them again.
        return Entry(generation=_set_generation(cache))
    stamped = found.get(name)
    if stamped is None or stamped[0] != generation:
        return Entry(generation=generation)
    _stamp, verified_at, value = stamped
    if time.time() - verified_at > phoenix_settings.CACHE_TIMEOUT:
        return Entry(generation=generation)  # re-stores never stretch an entry's life
    return Entry(value, generation, verified_at)


# The generations this process has seen, oldest first: a generation is never set again once
# replaced, so reading an older one means the cache went back in time.
_seen: list[str] = []
_SEEN_KEPT = 64


def _rolled_back(generation: str) -> bool:
    if _seen and _seen[-1] == generation:
        return False
    if generation in _seen:
        _seen.clear()
        return True
    _seen.append(generation)
    del _seen[:-_SEEN_KEPT]
    return False


def store(name: str, value: Any, entry: Entry) -> None:
    """Keep ``value`` under the generation read *before* the database was: never a newer one."""
    if entry.generation is None:
        return
    stamped = (entry.generation, entry.verified_at or time.time(), value)
    timeout = phoenix_settings.CACHE_TIMEOUT
    guarded(_key_cache_alias(), lambda cache: cache.set(name, stamped, timeout), None)


class CacheUnreachable(Exception):
    """The key cache could not be told of a revocation. The revocation is refused (its
    transaction rolls back) rather than reported done: entries the cache still holds would be
    served again when it answers (a frozen Redis thaws with its data)."""

    retry_after = 5

    def __init__(self) -> None:
        super().__init__(
            "The API key cache cannot be reached, so this revocation could not reach every "
            "server; nothing was revoked. Retry shortly."
        )


def invalidate(using: str, *, required: bool = True) -> None:
    """Retire every entry now and again once the change commits (call it inside the change's
    transaction, before its write): readers that saw the old rows before the commit can only
    have stamped them with a generation that is gone.

    Raises CacheUnreachable when ``required`` and the cache cannot be told now.
    """
    retire_now(required=required)
    retire_after_commit(using)


def retire_now(*, required: bool = True) -> None:
    """Before a revocation writes: raises CacheUnreachable when ``required`` and the cache
    cannot be told."""
    alias = _key_cache_alias()
    if alias is None:
        return
    told = guarded(alias, lambda cache: bool(_set_generation(cache)), False, force=required)
    if required and not told:
        raise CacheUnreachable


def retire_after_commit(using: str) -> None:
    """After a revocation wrote: once its transaction commits (at once in autocommit)."""
    if _key_cache_alias() is not None:
        transaction.on_commit(_renew, using=using)


def _renew() -> None:
    guarded(_key_cache_alias(), _set_generation, None)


def _set_generation(cache: BaseCache) -> str:
    generation = _new_generation()
    cache.set(GENERATION, generation, None)
    _seen.append(generation)
    return generation


def _new_generation() -> str:
    return get_random_string(22)
