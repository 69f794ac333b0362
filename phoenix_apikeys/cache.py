"""The optional cache of verified keys, keyed by digest so a warm request costs no query.

Only keys that were found are cached, never a miss, so an attacker cannot fill the cache.
Revocation and owner changes delete entries (see ``receivers``); expiry is checked on every hit.
The system user (the admin secret's principal) is cached the same way and forgotten whenever
any user is saved or deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.cache import BaseCache, caches

from .conf import phoenix_settings

_NAMESPACE = "phoenix_apikeys:"


def _cache() -> BaseCache | None:
    alias = phoenix_settings.CACHE_ALIAS
    return caches[alias] if alias else None


def cache_name(digest: str) -> str:
    return _NAMESPACE + digest


def get(digest: str) -> Any:
    cache = _cache()
    return None if cache is None else cache.get(cache_name(digest))


def store(key: Any) -> None:
    cache = _cache()
    if cache is not None:
        cache.set(cache_name(key.digest), key, phoenix_settings.CACHE_TIMEOUT)


def forget(digests: Iterable[str]) -> None:
    cache = _cache()
    if cache is not None:
        cache.delete_many([cache_name(digest) for digest in digests])


def _system_user_name() -> str:
    return f"{_NAMESPACE}system-user:{phoenix_settings.SYSTEM_USERNAME}"


def get_system_user() -> Any:
    cache = _cache()
    return None if cache is None else cache.get(_system_user_name())


def store_system_user(user: Any) -> None:
    cache = _cache()
    if cache is not None:
        cache.set(_system_user_name(), user, phoenix_settings.CACHE_TIMEOUT)


def forget_system_user() -> None:
    cache = _cache()
    if cache is not None:
        cache.delete(_system_user_name())
