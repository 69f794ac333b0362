"""The one path from a presented credential to a principal, shared by every entry point.

header -> credential -> format and checksum (no query) -> one indexed query or a cache hit
-> expiry and owner checks -> (user, auth).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import datetime
from typing import Any, NoReturn

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.db import DatabaseError, router, transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.views.decorators.debug import sensitive_variables

from . import audit, cache, restrictions, scopes, throttle
from .conf import phoenix_settings
from .keys import Credential, ParsedKey, check_key, digest, digests, secret_matches
from .models import KEY_MODELS, AbstractAPIKey, KeyEvent, system_user
from .outage import VerificationUnavailable, database_answered, database_failed
from .rules import MAX_CREDENTIAL_LENGTH
from .scopes import ScopedUser
from .signals import authentication_failed, key_cache_read

logger = logging.getLogger("phoenix_apikeys")


class AdminSecret:
    """``request.auth`` for a caller that presented PHOENIX_ADMIN_SECRET."""

    credential = Credential.ADMIN_SECRET
    pk = None

    def __str__(self) -> str:
        return "admin secret"

    def __repr__(self) -> str:
        return "<AdminSecret>"


ADMIN_SECRET = AdminSecret()

Principal = tuple[Any, "AbstractAPIKey | AdminSecret"]
# Where APIKeyMiddleware leaves the principal, so DRF does not verify the same request twice.
PRINCIPAL_ATTRIBUTE = "_phoenix_apikeys_principal"


class CredentialRejected(Exception):
    """Authentication failed; ``detail`` is safe to show the caller (in the active language),
    ``reason`` is for logs and metrics (English, never translated; logged by ``log_failure``),
    ``key_id`` the stored key refused, if one was found."""

    def __init__(self, reason: str, detail: str | None = None, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = _invalid_key(get_language()) if detail is None else detail
        self.key_id = key_id


@functools.lru_cache(maxsize=64)
def _invalid_key(language: str | None) -> str:
    """The refusal every guess and malformed key gets, translated once per language."""
    return gettext("Invalid API key.")


@receiver(setting_changed)
def _forget_translations(*, setting: str, **kwargs: Any) -> None:
    if setting in {"LANGUAGE_CODE", "LANGUAGES", "LOCALE_PATHS", "USE_I18N"}:
        _invalid_key.cache_clear()


@sensitive_variables()
def verify_credential(
    credential: str, source: throttle.Source = None, method: str | None = None
) -> Principal:
    """Return ``(user, auth)`` for a key or the admin secret, or raise CredentialRejected.

    ``source`` (the client's address, or a function finding it: called only on a cache miss, a
    failure or for a restricted key) is refused before any database query once it has failed
    too often (throttle.TooManyFailures). ``method``, when given, is judged against the key's
    scopes (scopes.OutOfScope, 403) before its restrictions are (``restrictions.admit``: 403,
    429, and a use spent). A database that cannot be asked is neither a yes nor a
    no: VerificationUnavailable. ``sensitive_variables`` hides the locals of this frame and of
    every frame it calls from Django's error reports (with DEBUG off); ``Secret``'s masked repr
    covers DEBUG pages.
    """
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        reject("credential too long")
    prefixes = phoenix_settings.prefixes
    parsed = check_key(credential, prefixes)
    if isinstance(parsed, str):
        kind = prefixes.kind_of(credential)
        if kind is not None:
            reject(f"malformed {kind.value} key: {parsed}", kind=kind.credential)
    try:
        if isinstance(parsed, str):  # no key prefix: it can only be the admin secret
            return _verify_admin_secret(credential, source)
        return _verify_key(parsed, source, method)
    except DatabaseError as error:
        database_failed(error)
        raise VerificationUnavailable from None


def _verify_key(parsed: ParsedKey, source: throttle.Source, method: str | None) -> Principal:
    kind = parsed.kind
    secrets = phoenix_settings.verification_secrets
    if not secrets:
        reject("PHOENIX_SECRET is missing or breaks a rule", kind=kind.credential)
    current = digest(parsed.plaintext, secrets[0])  # fallbacks are digested on a miss only
    name = cache.key_name(current)
    principal = _remembered_key(name, method)
    if principal is not None:
        return principal
    model = KEY_MODELS[kind]
    cached = _of_type(cache.read(name), model)
    _count_cache_read(cached)
    if cached.value is None:
        cached = _of_type(_unless_throttled(name, cached, source), model)
    key = cached.value
    if key is None:
        candidates = [current, *digests(parsed.plaintext, secrets[1:])]
        key = model._default_manager.find_by_digests(candidates)
        database_answered()
    if key is None:
        reject(f"unknown {kind.value} key", kind=kind.credential)
    now = timezone.now()
    if not key.is_usable(now):
        _refuse_unusable(key, now)
    try:
        if method is not None and key.scopes:
            refuse_out_of_scope(key, method)
        if key.is_restricted:
            restrictions.admit(key, source)
    except (scopes.OutOfScope, throttle.TooManyFailures):
        if cached.value is None:  # a good key: its next refusal costs no query
            cache.store(name, key, cached, until=_alone_until(key))
        raise
    if key.remaining_uses is not None and not restrictions.spend_use(key):
        reject(
            f"{kind.value} key {key.key_id} has no uses left",
            detail=no_uses_left(),
            kind=kind.credential,
            key=key,
        )
    # Store whenever last_used_at was due, written here or by another process just before:
    # a cached entry with a stale last_used_at would otherwise try the UPDATE on every hit.
    due = key.last_used_is_due(now)
    if due:
        _record_use(key, now, source)
    if due or cached.value is None:
        cache.store(name, key, cached, until=_alone_until(key))
    return principal_of(key)


def _alone_until(key: AbstractAPIKey) -> datetime | None:
    """Until when this process's memory may answer for ``key`` with no other check: while it is
    usable, unrestricted and its use need not be recorded; None: never."""
    if key.is_restricted or key.last_used_at is None or not key.is_usable():
        return None
    until: datetime = key.last_used_at + phoenix_settings.LAST_USED_INTERVAL
    return until if key.expires_at is None else min(until, key.expires_at)


def no_uses_left() -> str:
    return gettext("This API key has no uses left.")


def _refuse_unusable(key: AbstractAPIKey, now: datetime) -> NoReturn:
    detail = None
    if key.is_expired(now):
        reason = "expired"
    elif key.disabled:
        reason, detail = "disabled", gettext("This API key is disabled.")
    elif key.remaining_uses == 0:
        reason, detail = "has no uses left", no_uses_left()
    else:
        reason = "owner inactive"
    reason = f"{key.kind.value} key {key.key_id} {reason}"
    reject(reason, detail=detail, kind=key.credential, key=key)


def refuse_out_of_scope(key: AbstractAPIKey, method: str) -> None:
    refusal = scopes.method_refusal(key.scope_list, method)
    if refusal is not None:
        raise scopes.OutOfScope(refusal)


def _of_type(entry: cache.Entry, model: type) -> cache.Entry:
    """A shared cache entry that is not a ``model`` (written there by something else) is a miss."""
    return (
        entry
        if entry.value is None or isinstance(entry.value, model)
        else entry._replace(value=None)
    )


def _unless_throttled(name: str, cached: cache.Entry, source: throttle.Source) -> cache.Entry:
    """Before the database is asked: an address past the failure limit is refused
    (TooManyFailures), unless the shared cache holds the entry."""
    try:
        throttle.refuse_if_blocked(source)
    except throttle.TooManyFailures:
        shared = cache.read_shared(name, cached)
        if shared.value is None:
            raise
        return shared
    return cached


def principal_of(key: AbstractAPIKey) -> Principal:
    """``(user, key)``; a scoped key presents its owner narrowed to the key's permissions."""
    if not key.scopes:
        return key.user, key
    return ScopedUser(key.user, scopes.permissions(key.scope_list)), key


def _record_use(key: AbstractAPIKey, now: datetime, source: throttle.Source) -> None:
    """A key served from the cache stays usable while the database cannot take the write."""
    try:
        key.record_use(now, restrictions.client_ip(source))
    except DatabaseError as error:
        database_failed(error)


def _verify_admin_secret(credential: str, source: throttle.Source) -> Principal:
    admin_secret = phoenix_settings.secrets.admin_secret
    if admin_secret is None or not secret_matches(credential, admin_secret):
        reject("unknown credential")
    model = get_user_model()
    cached = _of_type(cache.read(cache.SYSTEM_USER), model)
    _count_cache_read(cached)
    if cached.value is None:
        cached = _of_type(_unless_throttled(cache.SYSTEM_USER, cached, source), model)
    user = cached.value
    if user is None:
        user = system_user()
        database_answered()
    if not user.is_active:
        reject(
            "admin secret presented but the system user is inactive",
            kind=Credential.ADMIN_SECRET,
        )
    if cached.value is None:
        cache.store(cache.SYSTEM_USER, user, cached)  # only an active one
    _record_admin_secret_use(source)
    return user, ADMIN_SECRET


async def averify_credential(
    credential: str, source: throttle.Source = None, method: str | None = None
) -> Principal:
    """``verify_credential`` for async callers, behind the same rules.

    A key (or the admin secret) this process's memory holds, usable and with no write due, is
    answered on the event loop with no I/O. Everything else (a cache round trip, the database,
    a rejection) runs ``verify_credential`` itself in a thread: the key lookup is hand-built SQL
    on a sync cursor, and Django's async ORM and cache calls hop to a thread anyway.
    """
    principal = _remembered_principal(credential, method)
    if principal is not None:
        return principal
    return await sync_to_async(verify_credential)(credential, source, method)


@sensitive_variables()
def _remembered_principal(credential: str, method: str | None) -> Principal | None:
    """The principal from process memory alone, or None when anything needs I/O or refusal
    (a restricted key included)."""
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        return None
    parsed = check_key(credential, phoenix_settings.prefixes)
    if isinstance(parsed, str):
        return _remembered_admin_secret(credential)
    secrets = phoenix_settings.verification_secrets
    if not secrets:
        return None
    return _remembered_key(cache.key_name(digest(parsed.plaintext, secrets[0])), method)


def _remembered_key(name: str, method: str | None) -> Principal | None:
    """The principal of a key this process's memory may answer for alone (``_alone_until``:
    the warm path, no I/O); None sends the request down the whole path."""
    key = cache.recall(name, timezone.now())
    if key is None:
        return None
    if method is not None and key.scopes:
        refuse_out_of_scope(key, method)
    if key_cache_read.receivers:  # has_listeners() takes the signal's lock
        key_cache_read.send(sender=None, hit=True)
    return principal_of(key)


def _remembered_admin_secret(credential: str) -> Principal | None:
    admin_secret = phoenix_settings.secrets.admin_secret
    if admin_secret is None or phoenix_settings.prefixes.kind_of(credential) is not None:
        return None
    if not secret_matches(credential, admin_secret):
        return None
    last = _admin_secret_recorded
    interval = phoenix_settings.LAST_USED_INTERVAL.total_seconds()
    if last is None or time.monotonic() - last >= interval:
        return None  # its use is due to be recorded: the sync path writes the event
    user = cache.recall(cache.SYSTEM_USER)
    if user is None or not user.is_active:
        return None
    if key_cache_read.receivers:  # has_listeners() takes the signal's lock
        key_cache_read.send(sender=None, hit=True)
    return user, ADMIN_SECRET


def _count_cache_read(entry: cache.Entry) -> None:
    """A hit or a miss of the key cache, for metrics; nothing when no cache answered."""
    if entry.value is not None or entry.stamp is not None or entry.unread:
        key_cache_read.send(sender=None, hit=entry.value is not None)


# When this process last recorded a use of the admin secret (time.monotonic()); None: never.
_admin_secret_recorded: float | None = None
_admin_secret_lock = threading.Lock()


def _record_admin_secret_use(source: throttle.Source) -> None:
    """An ``admin_secret_used`` event at most once per LAST_USED_INTERVAL per process, so the
    warm path stays at zero queries. A database that cannot take it costs the caller nothing."""
    global _admin_secret_recorded
    now = time.monotonic()
    interval = phoenix_settings.LAST_USED_INTERVAL.total_seconds()
    if _admin_secret_recorded is not None and now - _admin_secret_recorded < interval:
        return
    with _admin_secret_lock:  # of concurrent threads, one records
        last = _admin_secret_recorded
        if last is not None and now - last < interval:
            return
        _admin_secret_recorded = now
    address = throttle.address_of(source)
    try:
        with transaction.atomic(using=router.db_for_write(KeyEvent)):
            KeyEvent.objects.record(
                KeyEvent.Action.ADMIN_SECRET_USED, label=audit.ADMIN_SECRET, source=address
            )
    except DatabaseError as error:
        database_failed(error)


def reject(
    reason: str,
    *,
    detail: str | None = None,
    kind: Credential | None = None,
    key: AbstractAPIKey | None = None,
) -> NoReturn:
    # ``reason`` holds only our own words and ids, never text from the request. It is logged by
    # the request's entry point once the throttle has counted it (``log_failure``).
    key_id = None if key is None else key.key_id
    if authentication_failed.receivers:  # has_listeners() takes the signal's lock
        authentication_failed.send(sender=None, reason=reason, kind=kind, key_id=key_id)
    raise CredentialRejected(reason, detail, key_id)
