"""The one path from a presented credential to a principal, shared by every entry point.

header -> credential -> format and checksum (no query) -> one indexed query or a cache hit
-> expiry and owner checks -> (user, auth).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from django.db import router
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import cache
from .conf import Secret, phoenix_settings
from .keys import (
    KeyKind,
    MalformedKey,
    ParsedKey,
    digests,
    key_kind,
    parse_key,
    secret_matches,
)
from .lookup import find_by_digests
from .models import AbstractAPIKey, SystemKey, UserKey, system_user
from .signals import authentication_failed, key_rotated

logger = logging.getLogger("phoenix_apikeys")

# Longer than any key or sensible admin secret; refused before it is hashed.
MAX_CREDENTIAL_LENGTH = 1024
# Where APIKeyMiddleware leaves the principal, so DRF does not verify the same request twice.
PRINCIPAL_ATTRIBUTE = "_phoenix_apikeys_principal"
MODELS: dict[KeyKind, type[AbstractAPIKey]] = {KeyKind.SYSTEM: SystemKey, KeyKind.USER: UserKey}


class AdminSecret:
    """``request.auth`` for a caller that presented PHOENIX_ADMIN_SECRET."""

    kind = "admin_secret"
    pk = None

    def __str__(self) -> str:
        return "admin secret"

    def __repr__(self) -> str:
        return "<AdminSecret>"


ADMIN_SECRET = AdminSecret()

Principal = tuple[Any, "AbstractAPIKey | AdminSecret"]


class CredentialRejected(Exception):
    """Authentication failed; ``detail`` is safe to show the caller, ``reason`` is for logs."""

    def __init__(self, reason: str, detail: str = "Invalid API key.") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@sensitive_variables()
def credential_from_header(header: str | None) -> str | None:
    """The credential in ``<keyword> <credential>``; None when the header is not ours."""
    if not header:
        return None
    parts = header.split()
    if not parts or parts[0].lower() != phoenix_settings.AUTH_HEADER_KEYWORD.lower():
        return None
    if len(parts) != 2:
        _reject(
            "malformed Authorization header",
            detail="Invalid Authorization header: expected one credential after the keyword.",
        )
    return Secret(parts[1])


@sensitive_variables()
def verify_credential(credential: str) -> Principal:
    """Return ``(user, auth)`` for a key or the admin secret, or raise CredentialRejected.

    ``sensitive_variables`` hides the locals of this frame and of every frame it calls from
    Django's error reports (with DEBUG off); ``Secret``'s masked repr covers DEBUG pages.
    """
    if len(credential) > MAX_CREDENTIAL_LENGTH:
        _reject("credential too long")
    try:
        parsed = parse_key(credential)
    except MalformedKey as error:
        kind = key_kind(credential)
        if kind is None:  # no key prefix: it can only be the admin secret
            return _verify_admin_secret(credential)
        _reject(f"malformed {kind.value} key: {error}", kind=kind.value)
    return _verify_key(parsed)


def _verify_key(parsed: ParsedKey) -> Principal:
    secrets = phoenix_settings.verification_secrets
    if not secrets:
        _reject("PHOENIX_SECRET is missing or breaks a rule", kind=parsed.kind.value)
    candidates = digests(parsed.plaintext, secrets)
    name = cache.key_name(candidates[0])
    cached = cache.read(name)
    key = cached.value
    if key is None:
        key = _find_key(MODELS[parsed.kind], candidates)
    if key is None:
        _reject(f"unknown {parsed.kind.value} key", kind=parsed.kind.value)
    now = timezone.now()
    if not key.is_usable(now):
        reason = "expired" if key.is_expired(now) else "owner inactive"
        _reject(f"{parsed.kind.value} key {key.pk} {reason}", kind=parsed.kind.value, key=key)
    # Store whenever last_used_at was due, written here or by another process just before:
    # a cached entry with a stale last_used_at would otherwise try the UPDATE on every hit.
    due = key.last_used_is_due(now)
    if due:
        key.record_use(now)
    if due or cached.value is None:
        cache.store(name, key, cached.generation)
    return key.user, key


def _find_key(model: type[AbstractAPIKey], candidates: list[str]) -> AbstractAPIKey | None:
    """One indexed query, joined to the owner, whatever the number of fallback secrets."""
    key: AbstractAPIKey | None = find_by_digests(model, candidates, router.db_for_read(model))
    if key is not None and key.digest != candidates[0]:
        _rekey(key, candidates[0])
    return key


def _rekey(key: AbstractAPIKey, current: str) -> None:
    """Move a digest made with a fallback secret onto the current secret."""
    old = key.digest
    type(key)._default_manager.filter(pk=key.pk, digest=old).update(digest=current)
    key.digest = current
    logger.info("Re-keyed %s key %s to the current PHOENIX_SECRET.", key.kind.value, key.pk)
    key_rotated.send(sender=type(key), key=key)


def _verify_admin_secret(credential: str) -> Principal:
    admin_secret = phoenix_settings.secrets.admin_secret
    if admin_secret is None or not secret_matches(credential, admin_secret):
        _reject("unknown credential")
    cached = cache.read(cache.SYSTEM_USER)
    user = cached.value
    if user is None:
        user = system_user()
    if not user.is_active:
        _reject("admin secret presented but the system user is inactive", kind="admin_secret")
    if cached.value is None:
        cache.store(cache.SYSTEM_USER, user, cached.generation)  # only an active one
    return user, ADMIN_SECRET


def _reject(
    reason: str,
    *,
    detail: str = "Invalid API key.",
    kind: str | None = None,
    key: AbstractAPIKey | None = None,
) -> NoReturn:
    # ``reason`` holds only our own words and ids, never text from the request.
    logger.warning("Authentication failed: %s.", reason)
    authentication_failed.send(
        sender=None, reason=reason, kind=kind, key_id=None if key is None else key.pk
    )
    raise CredentialRejected(reason, detail)
