"""The optional cache of verified keys, shared by every process that serves requests.

Every entry is stamped with the cache's generation, a random token that each revocation replaces
(at once, and again after its transaction commits). A hit counts only while its stamp is the
current generation, so a key that a concurrent request read from the database before a
revocation committed, and stored after it, is never served. Only found keys are cached, never a
miss, so an attacker cannot fill the cache. A per-process cache (local memory) cannot see a
revocation made by another process, so it is never used: the database path serves instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.utils.crypto import get_random_string

from .conf import phoenix_settings

logger = logging.getLogger("phoenix_apikeys")

_NAMESPACE = "phoenix_apikeys:"
GENERATION = _NAMESPACE + "generation"
SYSTEM_USER = _NAMESPACE + "system-user"
# Aliases already reported as per-process, so the log says it once per process, not per request.
_refused: set[str] = set()


@dataclass(frozen=True)
class Entry:
    """What a request found: the cached value (or None) and the generation to stamp a store with."""

    value: Any = None
    generation: str | None = None


def is_per_process(cache: BaseCache) -> bool:
    return isinstance(cache, LocMemCache)


def _cache() -> BaseCache | None:
    alias = phoenix_settings.CACHE_ALIAS
    if not alias:
        return None
    cache = caches[alias]
    if is_per_process(cache):
        if alias not in _refused:
            _refused.add(alias)
            logger.error(
                "CACHE_ALIAS %r is a per-process cache: other processes could not revoke the keys "
                "it holds, so keys are verified in the database. Use a shared cache (Redis).",
                alias,
            )
        return None
    return cache


def key_name(digest: str) -> str:
    return _NAMESPACE + digest


def read(name: str) -> Entry:
    """One round trip: the entry and the current generation together."""
    cache = _cache()
    if cache is None:
        return Entry()
    found = cache.get_many([name, GENERATION])
    generation = found.get(GENERATION)
    if generation is None:  # first use, or evicted: start one; whoever adds first wins
        cache.add(GENERATION, _new_generation(), None)
        return Entry(generation=cache.get(GENERATION))
    stamped = found.get(name)
    if stamped is None or stamped[0] != generation:
        return Entry(generation=generation)
    return Entry(stamped[1], generation)


def store(name: str, value: Any, generation: str | None) -> None:
    """Keep ``value`` under the generation read *before* the database was: never a newer one."""
    cache = _cache()
    if cache is not None and generation is not None:
        cache.set(name, (generation, value), phoenix_settings.CACHE_TIMEOUT)


def invalidate(using: str) -> None:
    """Retire every entry now and again once the change commits: readers that saw the old rows
    before the commit can only have stamped them with a generation that is gone."""
    if _cache() is None:
        return
    _renew()
    transaction.on_commit(_renew, using=using, robust=True)


def _renew() -> None:
    cache = _cache()
    if cache is not None:
        cache.set(GENERATION, _new_generation(), None)


def _new_generation() -> str:
    return get_random_string(22)
