"""SystemKey and UserKey, and their lifecycle: digests and metadata only, never a plaintext key.

The managers are the one home of the lifecycle: ``create_key`` (every rule a new key must meet,
raised as one ValidationError), ``get_by_key_id`` (opaque id), ``find_by_digests`` (the lookup
verification uses, with re-keying from fallback secrets), ``find_by_plaintext`` and
``with_status`` (the status of every key as a queryset annotation). API, admin and commands
only translate what these raise into their own words. Each change is recorded as a KeyEvent
(the audit trail, append-only) in the change's own transaction.
"""

from __future__ import annotations

import enum
import logging
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import models, router
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from . import audit, lookup, scopes
from .conf import phoenix_settings
from .ids import key_id, parse_key_id
from .keys import Credential, KeyKind, digest, digests, display_hint, generate_key, parse_key

logger = logging.getLogger("phoenix_apikeys")
KeyT = TypeVar("KeyT", bound="AbstractAPIKey")

# Every database stores this year in UTC, whatever offset the expiry was given with.
LAST_EXPIRY_YEAR = 9998
MAX_DESCRIPTION_LENGTH = 4096
# Control characters in a name or description would reach terminals and logs (tab and newline
# are fine in a description).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # bidi too
# A key this close to its expiry is shown as expiring, so its owner rotates it in time.
EXPIRING_WITHIN = timedelta(days=7)


class KeyStatus(str, enum.Enum):
    """Where a key stands; ``APIKeyQuerySet.with_status`` computes it in the database."""

    ACTIVE = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    OWNER_INACTIVE = "owner_inactive"

    @property
    def label(self) -> str:
        return "expires soon" if self is KeyStatus.EXPIRING else self.value.replace("_", " ")


class APIKeyQuerySet(models.QuerySet[KeyT]):
    def usable(self, now: datetime | None = None) -> APIKeyQuerySet[KeyT]:
        """Keys that would authenticate now: the queryset twin of ``is_usable``."""
        now = now or timezone.now()
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        usable: APIKeyQuerySet[KeyT] = self.filter(not_expired, user__is_active=True)
        return usable

    def expired(self, now: datetime | None = None) -> APIKeyQuerySet[KeyT]:
        expired: APIKeyQuerySet[KeyT] = self.filter(expires_at__lte=now or timezone.now())
        return expired

    def with_status(self, now: datetime | None = None) -> APIKeyQuerySet[KeyT]:
        """Each key annotated with ``status``, a KeyStatus value; filter on it like a field.

        Expired wins over an inactive owner, which wins over expiring: the first reason a key
        does not (or soon will not) work.
        """
        now = now or timezone.now()
        status = Case(
            When(expires_at__lte=now, then=Value(KeyStatus.EXPIRED.value)),
            When(user__is_active=False, then=Value(KeyStatus.OWNER_INACTIVE.value)),
            When(expires_at__lte=now + EXPIRING_WITHIN, then=Value(KeyStatus.EXPIRING.value)),
            default=Value(KeyStatus.ACTIVE.value),
            output_field=models.CharField(),
        )
        annotated: APIKeyQuerySet[KeyT] = self.annotate(status=status)
        return annotated

    @method_decorator(sensitive_variables())
    def create_key(self, **fields: Any) -> tuple[KeyT, str]:
        """Create a key and return it with its plaintext, which exists nowhere else.

        Raises ValidationError (by field: name, description, expires_at, user) for anything a
        caller supplied, MissingSecretError when the deployment cannot make keys.
        """
        key = self.model(**fields)
        return key, self.issue(key)

    @method_decorator(sensitive_variables())
    def issue(self, key: KeyT) -> str:
        """Give the unsaved ``key`` a new secret, validate and save it; return its plaintext.

        ``create_key`` for an instance built elsewhere (the admin's form): the same rules,
        errors, log line and signal. The key and its ``created`` KeyEvent are saved in one
        transaction.
        """
        from django.db import transaction

        from .signals import key_created

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
        key.full_clean(exclude=["user", "created_by"])
        with transaction.atomic(using=self.db, savepoint=False):  # the key and its event
            key.save(force_insert=True, using=self.db)
            KeyEvent.objects.using(self.db).record(KeyEvent.Action.CREATED, key)
        logger.info("Created %s key %s.", key.kind.value, key.key_id)
        key_created.send(sender=type(key), key=key)
        return plaintext

    def get_by_key_id(self, value: str) -> KeyT:
        """The key an opaque id names; DoesNotExist for garbage and for ids of the other kind."""
        parsed = parse_key_id(value, self.model.kind)
        if parsed is None:
            raise self.model.DoesNotExist(f"No {self.model.kind.value} key has id {value!r}.")
        return self.get(pk=parsed[1])

    def find_by_digests(self, candidates: list[str]) -> KeyT | None:
        """The key whose digest is one of ``candidates`` (current secret first), owner loaded.

        One indexed query, whatever the number of fallback secrets; a key found by a fallback's
        digest is moved onto the current secret.
        """
        key: KeyT | None = lookup.find_by_digests(self.model, candidates, self.db)
        if key is not None and key.digest != candidates[0]:
            key.rekey(candidates[0])
        return key

    @method_decorator(sensitive_variables())
    def find_by_plaintext(self, plaintext: str) -> KeyT | None:
        """The stored key a plaintext key matches, under the current or a fallback secret."""
        secrets = phoenix_settings.verification_secrets
        if not secrets:
            raise MissingSecretError
        return self.find_by_digests(digests(plaintext, secrets))

    @method_decorator(sensitive_variables())
    def rotate(
        self,
        old: KeyT,
        *,
        grace_period: timedelta | None = None,
        expires_at: object = ...,
        created_by: Any = None,
    ) -> tuple[KeyT, str]:
        """Replace ``old`` with a new key of the same owner, name, description and scopes; return
        the new key and its plaintext. One transaction: both changes happen, or neither.

        ``old`` keeps working for ``grace_period`` (default ROTATION_GRACE_PERIOD, at most
        MAX_ROTATION_GRACE_PERIOD): its expiry becomes the earlier of its own and the end of the
        grace period (``old.expires_at`` is updated to say which). With no grace it is revoked
        at once, deleted as a revocation deletes (``old.pk`` is then None). The new key expires
        at ``expires_at`` when given (``None``: as ``create_key`` without an expiry), else after
        the old key's lifetime counted from now (as without an expiry, if the old key never
        expired). ``created_by`` is recorded on a new system key. The new key is issued first
        (``key_created``), then the old one changed; a failure of either rolls back both.

        Raises ValidationError (``grace_period``; ``id`` for an expired key; the fields
        ``create_key`` names), MissingSecretError, cache.CacheUnreachable when the key cache
        cannot be told (then nothing changed), and DoesNotExist when ``old`` is gone.
        """
        from django.db import transaction

        from .signals import key_replaced

        grace = phoenix_settings.ROTATION_GRACE_PERIOD if grace_period is None else grace_period
        longest = phoenix_settings.MAX_ROTATION_GRACE_PERIOD
        if grace < timedelta(0):
            raise ValidationError({"grace_period": "Grace period must be 0 or more."})
        if grace > longest:
            raise ValidationError(
                {
                    "grace_period": f"Grace period must be at most {describe(longest)} "
                    "(MAX_ROTATION_GRACE_PERIOD)."
                }
            )
        if not (expires_at is ... or expires_at is None or isinstance(expires_at, datetime)):
            raise TypeError("expires_at must be a datetime, None, or left out.")
        using = getattr(self, "_db", None) or router.db_for_write(self.model)
        keys = self.using(using)
        with transaction.atomic(using=using):
            current = keys.select_for_update().filter(pk=old.pk).first()
            if current is None:
                raise self.model.DoesNotExist(f"No {self.model.kind.value} key has id {old.pk}.")
            now = timezone.now()
            if current.is_expired(now):
                raise ValidationError({"id": "The key has expired; create a new one."})
            replaced = KeyEvent.objects.using(using).filter(
                action=KeyEvent.Action.ROTATED, key_id=current.key_id
            )
            if replaced.exists():  # a retry would make a key that dies with the grace period
                raise ValidationError(
                    {"id": "The key was already replaced by a rotation; rotate its replacement."}
                )
            new_expiry = expires_at
            if expires_at is ... and current.expires_at is None:
                new_expiry = None
            elif expires_at is ... and current.expires_at is not None:
                lifetime = current.expires_at - current.created_at
                maximum = phoenix_settings.lifetime_policy(self.model.kind).maximum
                if maximum is not None:  # a key made at the maximum may be a few µs over it
                    lifetime = min(lifetime, maximum)
                try:
                    new_expiry = now + lifetime
                except OverflowError:  # past any representable time: the model's own error
                    new_expiry = datetime.max.replace(tzinfo=dt_timezone.utc)
            extra = {} if created_by is None else {"created_by": created_by}
            new = self.model(
                name=current.name,
                description=current.description,
                scopes=current.scopes,
                user_id=current.user_id,
                expires_at=new_expiry,
                **extra,
            )
            plaintext = keys.issue(new)
            # The key cache holds whole keys, the old expiry with them: the receivers retire
            # its entries before the write and again after the commit, and raise
            # CacheUnreachable (rolling all of this back) when it cannot be told.
            if not grace:
                old.delete(using=using)  # a revocation
                fate = "is revoked"
            else:
                ends = now + grace
                if current.expires_at is not None:
                    ends = min(ends, current.expires_at)
                current.expires_at = old.expires_at = ends
                current.save(update_fields=["expires_at"], using=using)
                fate = f"expires {ends.isoformat()}"
            KeyEvent.objects.using(using).record(KeyEvent.Action.ROTATED, current)
        logger.info(
            "Rotated %s key %s to %s; the old key %s.",
            new.kind.value,
            current.key_id,
            new.key_id,
            fate,
        )
        key_replaced.send(sender=self.model, old=old, new=new)
        return new, plaintext


class MissingSecretError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "PHOENIX_SECRET is not set or breaks a rule; run `manage.py check` to see why."
        )


class AbstractAPIKey(models.Model):
    kind: ClassVar[KeyKind]

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    # HMAC-SHA256 of the plaintext keyed by PHOENIX_SECRET; unique, so indexed.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Space-separated (scopes.py); empty: the owner's whole authority. Fixed at creation.
    scopes = models.TextField(blank=True, default="", editable=False)

    user: models.ForeignKey[Any, Any]
    user_id: Any

    class Meta:
        abstract = True
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefixed_hint})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:  # rare (a rename): one query to keep the scopes as made
            stored = type(self)._default_manager.filter(pk=self.pk).values_list("scopes", flat=True)
            if stored.first() not in (None, self.scopes):
                raise ValidationError(
                    {"scopes": "A key's scopes are fixed when it is made; make a new key instead."}
                )
        super().save(*args, **kwargs)

    @property
    def prefixed_hint(self) -> str:
        return f"{phoenix_settings.prefixes.of(self.kind)}…{self.hint}"

    @property
    def key_id(self) -> str:
        """The opaque id the API, the admin and the commands show; never the primary key."""
        return key_id(self.kind, self.pk)

    @property
    def credential(self) -> Credential:
        return self.kind.credential

    def clean(self) -> None:
        self.name = (self.name or "").strip()
        if not any(char.isprintable() and not char.isspace() for char in self.name):
            # Blank, or only invisible characters (zero-width spaces, byte-order marks).
            raise ValidationError({"name": "Name must not be blank."})
        if CONTROL.search(self.name):
            raise ValidationError({"name": "Name must not contain control characters."})
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            raise ValidationError(
                {"description": f"Description must be at most {MAX_DESCRIPTION_LENGTH} characters."}
            )
        if CONTROL.search(self.description.replace("\n", "").replace("\t", "")):
            raise ValidationError(
                {"description": "Description must not contain control characters."}
            )
        if self._state.adding:
            validate_expiry(self.expires_at, kind=self.kind)
            self.owner_checks()
            self.check_scopes()

    def owner_checks(self) -> None:
        """What the owner must be for a new key; each kind says."""

    def check_scopes(self) -> None:
        """Well formed, existing permissions the owner has: a key never carries more than it."""
        given = scopes.parse(self.scopes)
        wrong = scopes.problems(given)
        if wrong:
            raise ValidationError({"scopes": wrong})
        wanted = scopes.permissions(given)
        if not wanted:
            return
        codenames = {scope.partition(".")[2] for scope in wanted}
        existing = Permission.objects.filter(codename__in=codenames).values_list(
            "content_type__app_label", "codename"
        )
        known = {f"{app_label}.{codename}" for app_label, codename in existing}
        errors = [f'No permission "{scope}" exists.' for scope in sorted(wanted - known)]
        if self.user_id is not None:  # else judged once the owner is set (the admin's form)
            errors += [
                f'The owner does not have "{scope}"; a key cannot carry more than its owner.'
                for scope in sorted(wanted & known)
                if not self.user.has_perm(scope)
            ]
        if errors:
            raise ValidationError({"scopes": errors})

    @property
    def scope_list(self) -> tuple[str, ...]:
        return scopes.parse(self.scopes)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_usable(self, now: datetime | None = None) -> bool:
        """The one rule every path applies: not expired, and its user still active."""
        return not self.is_expired(now) and bool(self.user.is_active)

    def last_used_is_due(self, now: datetime) -> bool:
        interval = phoenix_settings.LAST_USED_INTERVAL
        return self.last_used_at is None or now - self.last_used_at >= interval

    def record_use(self, now: datetime) -> bool:
        """Write last_used_at at most once per interval; True when a write happened."""
        if not self.last_used_is_due(now):
            return False
        stale = Q(last_used_at__isnull=True) | Q(
            last_used_at__lte=now - phoenix_settings.LAST_USED_INTERVAL
        )
        # The condition makes concurrent processes write once between them, not once each.
        written = type(self)._default_manager.filter(stale, pk=self.pk).update(last_used_at=now)
        self.last_used_at = now
        return bool(written)

    def rekey(self, current: str) -> None:
        """Move a digest made with a fallback secret onto the current secret."""
        from .signals import key_rotated

        old = self.digest
        moved = type(self)._default_manager.filter(pk=self.pk, digest=old).update(digest=current)
        self.digest = current
        if not moved:  # a concurrent request moved it first, and said so
            return
        logger.info(
            "Re-keyed %s key %s to the current PHOENIX_SECRET.", self.kind.value, self.key_id
        )
        key_rotated.send(sender=type(self), key=self)


class SystemKey(AbstractAPIKey):
    """A credential of the whole system: acts as the system user, outlives its creator."""

    kind = KeyKind.SYSTEM

    # Always the system user; a FK so that verification is one join and the user is protected.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_system_keys",
        editable=False,
        help_text="Audit only: the key keeps working when this user is deleted.",
    )

    objects = APIKeyQuerySet["SystemKey"].as_manager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "system API key"
        verbose_name_plural = "system API keys"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.user_id is None:
            self.user = system_user()
        super().save(*args, **kwargs)

    def owner_checks(self) -> None:
        if self.user_id is None:  # scopes are checked against the system user's permissions
            self.user = system_user()


class UserKey(AbstractAPIKey):
    """A personal credential: acts as its owner and is deleted with them."""

    kind = KeyKind.USER

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="phoenix_api_keys",
        editable=False,
    )

    objects = APIKeyQuerySet["UserKey"].as_manager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "user API key"
        verbose_name_plural = "user API keys"
        permissions = (("view_all_userkeys", "Can view and revoke every user's API keys"),)

    def owner_checks(self) -> None:
        if self.user_id is None:
            return
        if is_system_user(self.user):
            raise ValidationError(
                {"user": "The system user owns no user keys; create a system key instead."}
            )
        if not self.user.is_active:
            raise ValidationError({"user": "The user is inactive; the key would not work."})


KEY_MODELS: dict[KeyKind, type[AbstractAPIKey]] = {KeyKind.SYSTEM: SystemKey, KeyKind.USER: UserKey}


def find_key_by_id(value: str) -> AbstractAPIKey | None:
    """The key of either kind an opaque id names, its owner loaded; None when there is none."""
    parsed = parse_key_id(value)
    if parsed is None:
        return None
    model = KEY_MODELS[parsed[0]]
    key: AbstractAPIKey | None = (
        model._default_manager.select_related("user").filter(pk=parsed[1]).first()
    )
    return key


@sensitive_variables()
def find_key_by_plaintext(text: str) -> AbstractAPIKey | None:
    """The stored key a leaked plaintext names; MalformedKey when it is not one of ours."""
    parsed = parse_key(text, phoenix_settings.prefixes)
    found: AbstractAPIKey | None = KEY_MODELS[parsed.kind]._default_manager.find_by_plaintext(
        parsed.plaintext
    )
    return found


def validate_expiry(
    expires_at: datetime | None, now: datetime | None = None, *, kind: KeyKind = KeyKind.USER
) -> None:
    """A new key's expiry: in the future, and within the kind's MAX_KEY_LIFETIME when one is
    set (then a key that never expires is refused too)."""
    lifetime = phoenix_settings.lifetime_policy(kind).maximum
    if expires_at is None:
        if lifetime is not None:
            raise ValidationError(
                {
                    "expires_at": f"Keys must expire here, within {describe(lifetime)} "
                    "(MAX_KEY_LIFETIME)."
                }
            )
        return
    now = now or timezone.now()
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": "Expiry must include a time zone."})
    try:
        in_utc = expires_at.astimezone(dt_timezone.utc)
    except OverflowError:
        in_utc = None
    if in_utc is None or in_utc.year > LAST_EXPIRY_YEAR:
        raise ValidationError({"expires_at": f"Expiry must be before {LAST_EXPIRY_YEAR + 1}."})
    if expires_at <= now:
        raise ValidationError({"expires_at": "Expiry must be in the future."})
    if lifetime is not None and expires_at > now + lifetime:
        raise ValidationError(
            {"expires_at": f"Expiry must be within {describe(lifetime)} (MAX_KEY_LIFETIME)."}
        )


def describe(lifetime: timedelta) -> str:
    """``90 days``, ``12 hours``, ``30 minutes`` or ``45 seconds``: the largest whole unit."""
    seconds = int(lifetime.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


class SystemUser(models.Model):
    """Which user is the system user: bound by identity, so a rename moves nothing."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "system user binding"

    def __str__(self) -> str:
        return f"system user {self.user_id}"


def system_user() -> AbstractBaseUser:
    """The first system user: bound on first need, with a password nobody can use."""
    using = router.db_for_write(SystemUser)
    binding = SystemUser.objects.using(using).select_related("user").first()
    if binding is not None:
        user: AbstractBaseUser = binding.user
        return user
    return _bind_system_user(using)


def _bind_system_user(using: str) -> AbstractBaseUser:
    """Adopt the user existing system keys act as; else get or create SYSTEM_USERNAME."""
    key = SystemKey.objects.using(using).select_related("user").order_by("pk").first()
    if key is not None:
        user = key.user
    else:
        user_model = get_user_model()
        lookup = {user_model.USERNAME_FIELD: str(phoenix_settings.SYSTEM_USERNAME)}
        user, _ = user_model._default_manager.db_manager(using).get_or_create(
            **lookup,
            defaults={"password": make_password(None)},  # unusable: nobody logs in
        )
    binding, _ = SystemUser.objects.using(using).get_or_create(pk=1, defaults={"user": user})
    bound: AbstractBaseUser = binding.user
    return bound


def system_user_id() -> Any:
    """The system user's primary key, or None while nothing is bound yet; never creates it."""
    using = router.db_for_read(SystemUser)
    return SystemUser.objects.using(using).values_list("user_id", flat=True).first()


def is_system_user(user: Any) -> bool:
    """By identity: the bound user, whatever its name is now."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    return bool(user.pk == system_user_id())


class ExpiryNotice(models.Model):
    """One expiry notice sent: at most one per key per threshold, ever (management/notices.py).

    The key is named by kind and primary key, not by a foreign key, so the record outlives the
    key (revoked, pruned) and its notices are never sent again.
    """

    kind = models.CharField(max_length=6, choices=[(kind.value, kind.value) for kind in KeyKind])
    key_pk = models.BigIntegerField()
    threshold = models.BigIntegerField(help_text="Seconds before the expiry; 0: expired.")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "expiry notice"
        ordering = ("-sent_at", "-id")
        constraints = (
            models.UniqueConstraint(
                fields=("kind", "key_pk", "threshold"), name="phoenix_apikeys_one_expiry_notice"
            ),
        )

    def __str__(self) -> str:
        return f"{key_id(KeyKind(self.kind), self.key_pk)} at {self.threshold} s"


class KeyEventQuerySet(models.QuerySet["KeyEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("Key events are append-only: an event is never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("Key events are append-only: use prune_older_than (prune_key_events).")

    def prune_older_than(self, moment: datetime) -> int:
        """The one way events go: every event before ``moment``; the number deleted."""
        deleted, _ = models.QuerySet.delete(self.filter(at__lt=moment))
        return deleted

    def record(
        self,
        action: str,
        key: AbstractAPIKey | None = None,
        *,
        actor: Any = None,
        label: str | None = None,
        source: str | None = None,
    ) -> KeyEvent:
        """Write one event now, in the caller's transaction; ``key`` None: the admin secret.

        Who and where come from ``actor``/``label``/``source`` when given, else from
        ``audit.acting``. The key's id and name are copied (never its digest or plaintext), so
        the event reads the same after the key is gone. ``key_event_recorded`` is sent once the
        transaction commits.
        """
        from django.db import transaction

        from .signals import key_event_recorded

        context = audit.current()
        if actor is not None or label is not None:
            context = audit.Acting(actor=actor, label=label or "")
        event = self.model(
            action=action,
            kind=key.kind.value if key is not None else Credential.ADMIN_SECRET.value,
            key_id=key.key_id if key is not None else "",
            key_name=key.name if key is not None else "",
            actor=context.actor_user,
            actor_label=context.actor_label[:150],
            source=(source if source is not None else audit.current().source or "")[:64],
        )
        using = getattr(self, "_db", None) or router.db_for_write(self.model)
        event.save(force_insert=True, using=using)
        transaction.on_commit(
            lambda: key_event_recorded.send(sender=self.model, event=event), using=using
        )
        return event


class KeyEvent(models.Model):
    """One change of a key's life, or a use of the admin secret: append-only.

    A row is never changed (``save`` of an existing row raises) nor deleted one by one
    (``delete`` raises); only ``prune_key_events`` removes rows older than EVENT_RETENTION, with
    a queryset delete. It names the key by its opaque id and name and never holds a secret.
    """

    class Action(models.TextChoices):
        CREATED = "created"
        ROTATED = "rotated"
        REVOKED = "revoked"
        EXPIRED_PRUNED = "expired_pruned"
        LEAK_REVOKED = "leak_revoked"
        ADMIN_SECRET_USED = "admin_secret_used"

    class Kind(models.TextChoices):
        SYSTEM = KeyKind.SYSTEM.value
        USER = KeyKind.USER.value
        ADMIN_SECRET = Credential.ADMIN_SECRET.value

    action = models.CharField(max_length=32, choices=Action.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key_id = models.CharField(max_length=64, blank=True, help_text="Blank for the admin secret.")
    key_name = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=150, help_text='The username, or "command", "admin secret", "anonymous".'
    )
    source = models.CharField(max_length=64, blank=True, help_text="The client's address.")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = KeyEventQuerySet.as_manager()

    class Meta:
        verbose_name = "key event"
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        what = self.key_id or "admin secret"
        return f"{self.action} {what} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise TypeError("Key events are append-only: an event is never changed.")
        # Always an INSERT: a new instance given an existing pk must not overwrite that row.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "Key events are append-only: prune_key_events removes those older than EVENT_RETENTION."
        )
