"""A key's state and its one owner: the manager that issues, rotates, revokes and prunes keys.

Each change is a method here and one transaction on the primary database (the router's write
database, so a lagging replica never hides a change): it locks the key's row or updates it on a
condition, writes its KeyEvent, retires that key's cached entries (before the write, refused with
cache.CacheUnreachable when the cache cannot be told, and again once the change commits) and
sends its signal once the change commits. Nothing else deletes a key row or writes its digest,
owner, expiry or replacement: saving a loaded key writes its name and description only
(``AbstractAPIKey.save``), and ``delete()`` of a key or a queryset of keys is ``revoke``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connections, models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.debug import sensitive_variables

from .. import cache, lookup, scopes
from ..conf import phoenix_settings
from ..keys import KeyKind, MalformedKey, digest, digests, display_hint, generate_key, parse_key
from ..notifications import LeakNotice
from ..signals import key_created, key_revoked, key_rotated
from .events import KeyEvent
from .restricted import INHERITED, RestrictingManager

if TYPE_CHECKING:
    from .keys import AbstractAPIKey

logger = logging.getLogger("phoenix_apikeys")
KeyT = TypeVar("KeyT", bound="AbstractAPIKey")
Action = KeyEvent.Action


class MissingSecretError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "PHOENIX_SECRET is not set or breaks a rule; run `manage.py check` to see why."
        )


class KeyManager(RestrictingManager[KeyT]):
    """The lifecycle of one kind of key; its queries come from ``APIKeyQuerySet``."""

    def primary(self) -> str:
        return router.db_for_write(self.model)

    def find_by_digests(self, candidates: list[str]) -> KeyT | None:
        """The key whose digest is one of ``candidates`` (current secret first), owner loaded.

        One indexed query, whatever the number of fallback secrets; a key found by a fallback's
        digest is moved onto the current secret. Asked of the primary database (the router's
        write database): a replica may still hold a revoked key or lack a new one.
        """
        using = router.db_for_write(self.model)
        key: KeyT | None = lookup.find_by_digests(self.model, candidates, using)
        if key is not None and key.digest != candidates[0] and not key.rekey(candidates[0]):
            return None  # revoked since it was read
        return key

    @sensitive_variables()
    def find_by_plaintext(self, plaintext: str) -> KeyT | None:
        """The stored key a plaintext key matches, under the current or a fallback secret."""
        secrets = phoenix_settings.verification_secrets
        if not secrets:
            raise MissingSecretError
        return self.find_by_digests(digests(plaintext, secrets))

    @sensitive_variables()
    def create_key(self, **fields: Any) -> tuple[KeyT, str]:
        """Create a key and return it with its plaintext, which exists nowhere else.

        Raises ValidationError (by field: name, description, expires_at, scopes, user; the
        inventory limit as a non-field error) for anything a caller supplied, and
        MissingSecretError when the deployment cannot make keys.
        """
        key = self.model(**fields)
        return key, self.issue(key)

    @sensitive_variables()
    def issue(self, key: KeyT, *, counted: bool = True) -> str:
        """Give the unsaved ``key`` a new secret, validate and save it; return its plaintext.

        ``create_key`` for an instance built elsewhere (the admin's form). The owner's row is
        locked while the owner is checked and the live keys counted, so concurrent creations
        never pass MAX_KEYS_PER_USER / MAX_SYSTEM_KEYS and no key is made for an owner being
        deactivated; a key that takes an old one's place at once (``counted`` False) is not
        counted.
        """
        secret = phoenix_settings.secrets.secret
        if secret is None:
            raise MissingSecretError
        default = phoenix_settings.lifetime_policy(key.kind).default
        if key.expires_at is None and default is not None:  # DEFAULT_KEY_LIFETIME
            key.expires_at = (key.created_at or timezone.now()) + default
        if not isinstance(key.scopes, str):  # a list from the API, the admin or a command
            wrong = scopes.problems(key.scopes)
            if wrong:
                raise ValidationError({"scopes": wrong})
            key.scopes = scopes.join(key.scopes)
        plaintext = generate_key(phoenix_settings.prefixes.of(key.kind))
        key.digest, key.hint = digest(plaintext, secret), display_hint(plaintext)
        # No uniqueness query: the digest is of 160 fresh random bits (and the column unique).
        # allowed_networks may be a list: the model's clean() judges and joins it.
        key.full_clean(exclude=["user", "created_by", "allowed_networks"], validate_unique=False)
        using = self.primary()
        with transaction.atomic(using=using):
            self.check_owner(key, using, counted=counted)
            key.save(force_insert=True, using=using)
            KeyEvent.objects.record(Action.CREATED, key)
            transaction.on_commit(lambda: key_created.send(sender=self.model, key=key), using)
        logger.info("Created %s key %s.", key.kind.value, key.key_id)
        return plaintext

    def check_owner(self, key: KeyT, using: str, *, counted: bool) -> None:
        """Lock the owner's row until the key commits: an owner deactivated meanwhile gets no
        key (their keys' cache entries are listed when that change commits), and concurrent
        creations are counted one after another against the owner's limit of live keys."""
        owner = lock_owner(key.user_id, using)
        if key.kind is KeyKind.USER and not getattr(owner, "is_active", False):
            raise ValidationError(
                {"user": gettext("The user is inactive; the key would not work.")}
            )
        setting = "MAX_KEYS_PER_USER" if key.kind is KeyKind.USER else "MAX_SYSTEM_KEYS"
        limit: int | None = getattr(phoenix_settings, setting)
        if limit is None or not counted:
            return
        live = (
            self.db_manager(using)
            .filter(user_id=key.user_id)
            .exclude(expires_at__lte=timezone.now())
            .exclude(remaining_uses=0)
        )
        if live.count() >= limit:
            if key.kind is KeyKind.USER:
                message = ngettext(
                    "This user has %(limit)d live user key, the most allowed (%(setting)s); "
                    "revoke one first.",
                    "This user has %(limit)d live user keys, the most allowed (%(setting)s); "
                    "revoke one first.",
                    limit,
                )
            else:
                message = ngettext(
                    "There is %(limit)d live system key, the most allowed (%(setting)s); "
                    "revoke one first.",
                    "There are %(limit)d live system keys, the most allowed (%(setting)s); "
                    "revoke one first.",
                    limit,
                )
            raise ValidationError(
                {NON_FIELD_ERRORS: message % {"limit": limit, "setting": setting}}
            )

    @sensitive_variables()
    def rotate(
        self,
        old: KeyT,
        *,
        grace_period: timedelta | None = None,
        expires_at: object = ...,
        created_by: Any = None,
    ) -> tuple[KeyT, str]:
        """Replace ``old`` with a new key of the same owner, name, description, scopes and
        restrictions (disabled too); return the new key and its plaintext. One transaction: both
        changes happen, or neither. Remaining uses move to the new key: the old one keeps none.

        ``old`` keeps working for ``grace_period`` (default ROTATION_GRACE_PERIOD, at most
        MAX_ROTATION_GRACE_PERIOD): its expiry becomes the earlier of its own and the end of the
        grace period, and it records its replacement, so it is never replaced twice. With no
        grace it is revoked at once. ``old.expires_at`` and ``old.replaced_by`` are updated to
        say which. The new key expires at ``expires_at`` when given (``None``: as
        ``create_key`` without an expiry), else after the old key's lifetime counted from now.
        ``created_by`` is recorded on a new system key.

        Raises ValidationError (``grace_period``; ``id`` for an expired or already replaced
        key; the fields ``create_key`` names), MissingSecretError, cache.CacheUnreachable (then
        nothing changed), and DoesNotExist when ``old`` is gone.
        """
        grace = rotation_grace(grace_period)
        if not (expires_at is ... or expires_at is None or isinstance(expires_at, datetime)):
            raise TypeError("expires_at must be a datetime, None, or left out.")
        using = self.primary()
        with transaction.atomic(using=using):
            current = self._rotatable(old, using)
            now = timezone.now()
            extra = {} if created_by is None else {"created_by": created_by}
            new = self.model(
                name=current.name,
                description=current.description,
                user_id=current.user_id,
                expires_at=inherited_expiry(current, expires_at, now),
                **{field: getattr(current, field) for field in INHERITED},
                **extra,
            )
            # With a grace period the old key lives on beside the new one: counted as a creation.
            plaintext = self.issue(new, counted=bool(grace))
            ends = self._retire_rotated(current, new, now, grace)
            transaction.on_commit(
                lambda: key_rotated.send(sender=self.model, old=old, new=new), using
            )
        old.expires_at, old.replaced_by = ends, new.key_id
        fate = f"expires {ends.isoformat()}" if grace else "is revoked"
        logger.info(
            "Rotated %s key %s to %s; the old key %s.",
            new.kind.value,
            current.key_id,
            new.key_id,
            fate,
        )
        return new, plaintext

    def _rotatable(self, old: KeyT, using: str) -> KeyT:
        """``old`` locked (its owner's row first: the order a user's deletion takes them in),
        or why it cannot be rotated."""
        lock_owner(old.user_id, using)
        current: KeyT | None = self.db_manager(using).select_for_update().filter(pk=old.pk).first()
        if current is None:
            raise self.model.DoesNotExist(f"No {self.model.kind.value} key has id {old.pk}.")
        if current.is_expired(timezone.now()):
            raise ValidationError({"id": gettext("The key has expired; create a new one.")})
        if current.replaced_by:  # a retry would make a key that dies with the grace period
            raise ValidationError({"id": already_replaced()})
        return current

    def _retire_rotated(self, current: KeyT, new: KeyT, now: datetime, grace: timedelta) -> Any:
        """The replaced key: expiring at the end of the grace period (or its own expiry, if
        sooner), or revoked now without one; when it stops working."""
        if not grace:
            if not self.revoke(current):  # a concurrent revocation won
                raise self.model.DoesNotExist(
                    f"No {self.model.kind.value} key has id {current.pk}."
                )
            KeyEvent.objects.record(Action.ROTATED, current)
            return now
        ends = now + grace
        if current.expires_at is not None:
            ends = min(ends, current.expires_at)
        spent = {} if current.remaining_uses is None else {"remaining_uses": 0}
        self.change(current, expires_at=ends, replaced_by=new.key_id, **spent)
        KeyEvent.objects.record(Action.ROTATED, current)
        return ends

    def change(self, key: KeyT, **fields: Any) -> None:
        """Write state fields of a key not yet replaced, its cached copies retired first."""
        using = self.primary()
        cache.retire([cache.key_name(key.digest)], using)
        changed = self.db_manager(using).filter(pk=key.pk, replaced_by="").update(**fields)
        if not changed:
            raise ValidationError({"id": already_replaced()})

    def revoke(
        self,
        key: KeyT,
        *,
        reason: str = Action.REVOKED,  # type: ignore[assignment]  # see KeyEvent.Action
        actor: Any = None,
        label: str | None = None,
        source: str | None = None,
    ) -> bool:
        """Revoke ``key``: delete its row, record ``reason`` (an event action) by ``actor`` or
        ``label`` from ``source`` (by default who ``audit.acting`` names). True for the one
        call that revoked it; False when it was gone already. Raises cache.CacheUnreachable
        (nothing revoked) when the key cache cannot be told.
        """
        using = self.primary()
        with transaction.atomic(using=using):
            rows = self.db_manager(using).select_for_update().filter(pk=key.pk)
            stored = rows.values_list("digest", flat=True).first()
            if stored is None:
                return False
            cache.retire([cache.key_name(stored)], using)
            deleted, _ = models.QuerySet.delete(self.db_manager(using).filter(pk=key.pk))
            if not deleted:
                return False
            KeyEvent.objects.record(reason, key, actor=actor, label=label, source=source)
            transaction.on_commit(lambda: key_revoked.send(sender=self.model, key=key), using)
        logger.info("Revoked %s key %s (%s).", key.kind.value, key.key_id, reason)
        return True

    def prune_expired(self, now: datetime | None = None) -> Iterable[KeyT]:
        """Revoke each key past its expiry, recorded as expired_pruned; yields each one."""
        keys: Any = self.db_manager(self.primary())
        expired = keys.expired(now).select_related("user").order_by("pk")
        for key in expired:
            if self.revoke(key, reason=Action.EXPIRED_PRUNED):  # type: ignore[arg-type]
                yield key


def lock_owner(pk: Any, using: str) -> Any:
    """Lock a key owner's row for the transaction (always before any of their keys' rows).

    FOR NO KEY UPDATE where the database has it: it serialises key changes with each other and
    with the owner's own updates and deletion, but not with rows that merely point at the owner
    (an admin LogEntry, a KeyEvent) written while holding a key's row."""
    owners = get_user_model()._default_manager.db_manager(using)
    no_key = connections[using].features.has_select_for_no_key_update
    return owners.select_for_update(no_key=no_key).filter(pk=pk).first()


def already_replaced() -> str:
    return gettext("The key was already replaced by a rotation; rotate its replacement.")


def rotation_grace(grace_period: timedelta | None) -> timedelta:
    grace = phoenix_settings.ROTATION_GRACE_PERIOD if grace_period is None else grace_period
    longest = phoenix_settings.MAX_ROTATION_GRACE_PERIOD
    if grace < timedelta(0):
        raise ValidationError({"grace_period": gettext("Grace period must be 0 or more.")})
    if grace > longest:
        from ..rules import duration_text

        raise ValidationError(
            {
                "grace_period": gettext(
                    "Grace period must be at most %(longest)s (MAX_ROTATION_GRACE_PERIOD)."
                )
                % {"longest": duration_text(longest)}
            }
        )
    return grace


def inherited_expiry(old: Any, expires_at: object, now: datetime) -> datetime | None:
    """A replacement's expiry: the one given, else the old key's lifetime (within today's
    maximum) counted from now; never, if the old key never expired."""
    if expires_at is not ...:
        return expires_at  # type: ignore[return-value]
    if old.expires_at is None:
        return None
    lifetime = old.expires_at - old.created_at
    maximum = phoenix_settings.lifetime_policy(old.kind).maximum
    if maximum is not None:  # a key made at the maximum may be a few µs over it
        lifetime = min(lifetime, maximum)
    try:
        return now + lifetime  # type: ignore[no-any-return]
    except OverflowError:  # past any representable time: the model's own error
        return datetime.max.replace(tzinfo=dt_timezone.utc)


@sensitive_variables()
def revoke_leaked(texts: Iterable[str], source: str | None) -> None:
    """Revoke each live key ``texts`` names (a leak report) and email its owner once the report
    commits. Text that is no key of ours is digested all the same, so every item costs a parse
    and a digest. Raises cache.CacheUnreachable when the key cache cannot be told (then the
    caller's transaction rolls the whole report back, for the reporter's retry); the caller
    asks ``cache.ready_for_changes()`` first, so that answer does not depend on what was
    reported."""
    from .keys import KEY_MODELS

    secrets = phoenix_settings.verification_secrets
    if not secrets:
        raise MissingSecretError
    found: dict[tuple[str, Any], AbstractAPIKey] = {}
    for text in texts:
        try:
            parsed = parse_key(text, phoenix_settings.prefixes)
        except MalformedKey:
            digests(text, secrets)
            continue
        manager = KEY_MODELS[parsed.kind]._default_manager
        key = manager.find_by_digests(digests(parsed.plaintext, secrets))
        if key is not None and not key.is_expired():
            found[(key.kind.value, key.pk)] = key
    # One order for every report, so two reports of the same keys never deadlock.
    for _, key in sorted(found.items(), key=lambda item: item[0]):
        notice = LeakNotice.of(key)
        revoked = type(key)._default_manager.revoke(key, reason=Action.LEAK_REVOKED, source=source)
        if revoked:  # not when a concurrent revocation got there first
            logger.warning("Revoked %s: reported as leaked (from %s).", notice.key_id, source)
            transaction.on_commit(notice.send)
