"""The optional cache of verified keys: an accelerator shared by every serving process, never a
dependency.

Each entry is stamped with its key's version, a random token that each change of that key (a
revocation, a rotation, a change of its owner) replaces, at once and again after the change
commits; and with the cache's generation, replaced only when the cache comes back from an
outage. A hit counts only while its stamp is current, so a key that a concurrent request read
from the database before a revocation committed, and stored after it, is never served, and a
revocation retires that key's entries alone. Only found keys are cached (and given a version),
never a miss, so an attacker cannot fill the cache. A per-process cache (local memory) cannot
see a revocation made by another process, so it is never used: the database path serves instead.

A cache that fails (down, refusing, timing out) is skipped by this process for
CACHE_RETRY_INTERVAL seconds, so an outage costs one failed call per interval. When it answers
again the generation is renewed first: revocations made while it was unreachable could not
retire their entries.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.utils.crypto import get_random_string
from django.utils.translation import gettext

from . import coherence
from .breaker import Breaker
from .conf import phoenix_settings

logger = logging.getLogger("phoenix_apikeys")
T = TypeVar("T")

_NAMESPACE = "phoenix_apikeys:"
GENERATION = _NAMESPACE + "generation"
SYSTEM_USER = _NAMESPACE + "system-user"
# Aliases already reported as per-process, so the log says it once per process, not per request.
_refused: set[str] = set()
_unknown: set[str] = set()


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


class Entry(NamedTuple):  # a tuple: made on every request, and cheaply
    """What a request found: the cached value (or None), the stamp to store with (the
    generation and the key's version as read before the database was; the version None when
    the key has none yet), and when the value was last read from the database (kept when it is
    stored again)."""

    value: Any = None
    stamp: tuple[str, str | None] | None = None
    verified_at: float | None = None
    # From this process's memory (coherence.Memory): its drop count when the read began, which
    # must be unchanged when the value read from the database is kept. None: the shared cache.
    mark: int | None = None
    # A miss of this process's memory, the shared cache not asked (``read_shared`` asks it).
    unread: bool = False
    # Held in this process's memory: until when (``timezone.now()``) the value may answer a
    # request alone, with nothing about it to check again (``recall``); None: never.
    until: datetime | None = None


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


@functools.cache
def _key_cache_alias() -> str | None:
    """CACHE_ALIAS when it names a shared cache; worked out again after any settings change."""
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


@functools.cache
def _memory_url(alias: str | None) -> str | None:
    """The Redis that keeps processes' memories coherent; None: no memory (LOCAL_CACHE off, or
    a key cache that is not Redis)."""
    return coherence.redis_url(alias) if phoenix_settings.LOCAL_CACHE else None


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    _key_cache_alias.cache_clear()
    _memory_url.cache_clear()
    coherence.forget_all()  # what it holds was judged under the old settings (``Entry.until``)


def key_name(digest: str) -> str:
    return _NAMESPACE + digest


def _version_name(name: str) -> str:
    return name + ":version"


def read(name: str) -> Entry:
    """From this process's memory when it is coherent: what it holds, or a miss with no round
    trip (the database answers, and ``store`` shares what it found). Else one round trip to
    the shared cache: the entry, its key's version and the generation together."""
    alias = _key_cache_alias()
    memory = coherence.memory(_memory_url(alias))
    if memory is None:
        return guarded(alias, lambda cache: _read(cache, name), Entry())
    mark = memory.drops  # before the database is read
    kept: Entry | None = memory.recall(name)
    if kept is not None and time.time() - (kept.verified_at or 0) <= phoenix_settings.CACHE_TIMEOUT:
        return Entry(coherence.own_copy(kept.value), kept.stamp, kept.verified_at, mark)
    if memory.serving():  # a guess costs no round trip
        return Entry(mark=mark, unread=True)
    found = guarded(alias, lambda cache: _read(cache, name), Entry())
    return Entry(found.value, found.stamp, found.verified_at, mark)


def read_shared(name: str, entry: Entry) -> Entry:
    """``entry``, or what the shared cache holds when ``read`` did not ask it: for a request the
    throttle would keep from the database (a key another process verified still works)."""
    if not entry.unread:
        return entry
    found = guarded(_key_cache_alias(), lambda cache: _read(cache, name), Entry())
    return Entry(found.value, found.stamp, found.verified_at, entry.mark)


def _read(cache: BaseCache, name: str) -> Entry:
    found = cache.get_many([name, _version_name(name), GENERATION])
    generation = found.get(GENERATION)
    if generation is None:  # first use, or evicted: start one; whoever adds first wins
        cache.add(GENERATION, _new_token(), None)
        generation = cache.get(GENERATION)
    elif _rolled_back(generation):
        # A restored snapshot or a lagging replica brought back a retired generation, and with
        # it entries that revocations had retired: retire them again.
        generation = _set_generation(cache)
    if generation is None:
        return Entry()
    stamp = (generation, found.get(_version_name(name)))
    if isinstance(stamp[1], str) and stamp[1].startswith(_CHANGING):
        return Entry()  # a change to this entry's rows has not committed: read, never store
    stamped = found.get(name)
    if stamp[1] is None or stamped is None or stamped[0] != stamp:
        return Entry(stamp=stamp)
    _stamp, verified_at, value = stamped
    if time.time() - verified_at > phoenix_settings.CACHE_TIMEOUT:
        return Entry(stamp=stamp)  # re-stores never stretch an entry's life
    return Entry(value, stamp, verified_at)


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


def store(name: str, value: Any, entry: Entry, *, until: datetime | None = None) -> None:
    """Keep ``value`` under the stamp read *before* the database was: never a newer one. A key
    without a version gets one here, unless a change gave it one meanwhile (then no store). A
    value read on a miss of this process's memory is kept there, then shared (``_share``);
    ``recall`` may serve it alone until ``until`` (by default never)."""
    alias = _key_cache_alias()
    memory = coherence.memory(_memory_url(alias))
    verified_at = entry.verified_at or time.time()
    if entry.stamp is not None:
        guarded(alias, lambda cache: _store(cache, name, value, entry.stamp, verified_at), None)
    if memory is None or entry.mark is None:
        return
    kept = Entry(coherence.own_copy(value), entry.stamp, verified_at, until=until)
    if entry.stamp is None:
        _share(memory, alias, name, value, kept, entry.mark)
    else:
        memory.keep(name, kept, entry.mark)


def _store(cache: BaseCache, name: str, value: Any, stamp: Any, verified_at: float) -> None:
    generation, version = stamp
    timeout = phoenix_settings.CACHE_TIMEOUT
    if version is None:
        version = _new_token()
        if not cache.add(_version_name(name), version, timeout):
            return
    cache.set(name, ((generation, version), verified_at, value), timeout)


def _share(memory: Any, alias: str | None, name: str, value: Any, kept: Entry, mark: int) -> None:
    """Keep a value this process read from the database, then store it in the shared cache
    under the stamp read *after* it was kept: safe, because a change drops the name from every
    process before it writes (and its version lasts until it commits), so a read that no drop
    reached, checked again after the stamp is read, read the row that stamp stands for."""
    verified_at = kept.verified_at or time.time()
    if not memory.keep(name, kept, mark):
        return

    def share(cache: BaseCache) -> None:
        found = _read(cache, name)
        if found.stamp is None or found.value is not None:  # a change under way, or stored
            return
        if memory.unchanged(name, mark):
            _store(cache, name, value, found.stamp, verified_at)

    guarded(alias, share, None)


class CacheUnreachable(Exception):
    """The key cache could not be told of a revocation. The revocation is refused (its
    transaction rolls back) rather than reported done: entries the cache still holds would be
    served again when it answers (a frozen Redis thaws with its data)."""

    retry_after = 5

    def __init__(self) -> None:
        super().__init__(
            gettext(
                "The API key cache cannot be reached, so this change could not reach every "
                "server; nothing was changed. Retry shortly."
            )
        )


# A version set before a change writes: until the change's commit sets a plain version, readers
# of those entries go to the database and store nothing, so a row read before the commit is
# never stored after it, even when the cache cannot be told of the commit (the mark then lasts
# CACHE_TIMEOUT, and costs those keys a query per request meanwhile).
_CHANGING = "changing:"


def retire(names: list[str], using: str, *, required: bool = True) -> None:
    """Retire the entries ``names`` now and again once the change commits (call it inside the
    change's transaction, before its write): until the commit nothing is stored under them.

    Raises CacheUnreachable when ``required`` and the cache cannot be told now.
    """
    retire_now(names, required=required)
    retire_after_commit(names, using)


def retire_now(names: list[str], *, required: bool = True) -> None:
    """Before a change writes: raises CacheUnreachable when ``required`` and the cache cannot
    be told."""
    alias = _key_cache_alias()
    if alias is None or not names:
        return
    told = guarded(
        alias, lambda cache: _new_versions(cache, names, _CHANGING), False, force=required
    )
    url = _memory_url(alias)
    if url is not None and told:  # every process's memory too, each one confirmed
        told = coherence.drop_everywhere(url, names)
    if required and not told:
        raise CacheUnreachable


def ready_for_changes() -> bool:
    """Whether the key cache answers now (True without one): asked before work whose outcome
    must not depend on its input, such as a leak report."""
    alias = _key_cache_alias()
    return alias is None or guarded(
        alias, lambda cache: cache.get(GENERATION) or True, False, force=True
    )


def retire_after_commit(names: list[str] | Callable[[], list[str]], using: str) -> None:
    """After a change wrote: once its transaction commits (at once in autocommit). ``names``
    may be a function, then asked at the commit: entries of rows committed meanwhile count."""
    alias = _key_cache_alias()
    if alias is None or not names:
        return

    def renew() -> None:
        listed = names() if callable(names) else names
        if not listed:
            return
        # Committed: a plain version lets readers store again (the rows they read now are the
        # committed ones). Retried for a while; failing that, nothing is stored under these
        # entries until the mark set before the write expires.
        for pause in (0.0, 0.05, 0.2, 0.5, 1.0):
            time.sleep(pause)
            if guarded(alias, lambda cache: _new_versions(cache, listed), False, force=True):
                break
        else:
            logger.error(
                "Cache %r could not be told of a committed change to %d key entries; they are "
                "verified in the database until CACHE_TIMEOUT.",
                alias,
                len(listed),
            )
        url = _memory_url(alias)
        if url is not None:
            coherence.release(url, listed)

    transaction.on_commit(renew, using=using)


def _new_versions(cache: BaseCache, names: list[str], mark: str = "") -> bool:
    # A version outlives no entry it could match: entries live CACHE_TIMEOUT at most, and a
    # missing version matches no entry.
    timeout = phoenix_settings.CACHE_TIMEOUT
    cache.set_many({_version_name(name): mark + _new_token() for name in names}, timeout)
    return True


def _set_generation(cache: BaseCache) -> str:
    generation = _new_token()
    cache.set(GENERATION, generation, None)
    _seen.append(generation)
    return generation


def _new_token() -> str:
    return get_random_string(22)


def recall(name: str, now: datetime | None = None) -> Any:
    """A copy of what this process's memory holds under ``name``, or None: never a round trip
    (the async path's warm read, which must not leave the event loop). With ``now``, only a
    value that may answer alone then (``Entry.until``)."""
    memory = coherence.memory(_memory_url(_key_cache_alias()))
    kept: Entry | None = None if memory is None else memory.recall(name)
    if kept is None or time.time() - (kept.verified_at or 0) > phoenix_settings.CACHE_TIMEOUT:
        return None
    if now is not None and (kept.until is None or now >= kept.until):
        return None
    return coherence.own_copy(kept.value)
