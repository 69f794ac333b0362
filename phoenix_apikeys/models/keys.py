"""SystemKey and UserKey: digests and metadata only, never a plaintext key.

``APIKeyQuerySet`` answers questions about keys (status, lookups by id and digest); every change
of a key's state belongs to the manager (``state.KeyManager``).
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import models, router
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from .. import restrictions, scopes
from ..conf import phoenix_settings
from ..ids import key_id, parse_key_id
from ..keys import Credential, KeyKind, parse_key
from ..rules import CONTROL
from .expiry import validate_expiry
from .restricted import KeyRestrictions
from .state import KeyManager
from .system_user import is_system_user, system_user

logger = logging.getLogger("phoenix_apikeys")
KeyT = TypeVar("KeyT", bound="AbstractAPIKey")

MAX_DESCRIPTION_LENGTH = 4096
# A key this close to its expiry is shown as expiring, so its owner rotates it in time.
EXPIRING_WITHIN = timedelta(days=7)
# What saving a loaded key may write: everything else is the manager's (state.py).
EDITABLE_FIELDS = frozenset({"name", "description"})


class KeyStatus(str, enum.Enum):
    """Where a key stands; ``APIKeyQuerySet.with_status`` computes it in the database."""

    ACTIVE = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    DISABLED = "disabled"
    USED_UP = "used_up"
    OWNER_INACTIVE = "owner_inactive"

    @property
    def label(self) -> str:
        """What a person reads (translated); ``value`` is what filters and listings use."""
        labels = {
            KeyStatus.ACTIVE: gettext("active"),
            KeyStatus.EXPIRING: gettext("expires soon"),
            KeyStatus.EXPIRED: gettext("expired"),
            KeyStatus.DISABLED: gettext("disabled"),
            KeyStatus.USED_UP: gettext("no uses left"),
            KeyStatus.OWNER_INACTIVE: gettext("owner inactive"),
        }
        return labels[self]


class APIKeyQuerySet(models.QuerySet[KeyT]):
    def usable(self, now: datetime | None = None) -> APIKeyQuerySet[KeyT]:
        """Keys that would authenticate now: the queryset twin of ``is_usable``."""
        now = now or timezone.now()
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        usable: APIKeyQuerySet[KeyT] = self.filter(
            not_expired, disabled=False, user__is_active=True
        ).exclude(remaining_uses=0)
        return usable

    def expired(self, now: datetime | None = None) -> APIKeyQuerySet[KeyT]:
        expired: APIKeyQuerySet[KeyT] = self.filter(expires_at__lte=now or timezone.now())
        return expired

    def with_status(self, now: datetime | None = None) -> APIKeyQuerySet[KeyT]:
        """Each key annotated with ``status``, a KeyStatus value; filter on it like a field.

        Expired wins over disabled, then no uses left, an inactive owner, expiring: the first
        reason a key does not (or soon will not) work.
        """
        now = now or timezone.now()
        status = Case(
            When(expires_at__lte=now, then=Value(KeyStatus.EXPIRED.value)),
            When(disabled=True, then=Value(KeyStatus.DISABLED.value)),
            When(remaining_uses=0, then=Value(KeyStatus.USED_UP.value)),
            When(user__is_active=False, then=Value(KeyStatus.OWNER_INACTIVE.value)),
            When(expires_at__lte=now + EXPIRING_WITHIN, then=Value(KeyStatus.EXPIRING.value)),
            default=Value(KeyStatus.ACTIVE.value),
            output_field=models.CharField(),
        )
        annotated: APIKeyQuerySet[KeyT] = self.annotate(status=status)
        return annotated

    def get_by_key_id(self, value: str) -> KeyT:
        """The key an opaque id names; DoesNotExist for garbage and for ids of the other kind."""
        parsed = parse_key_id(value, self.model.kind)
        if parsed is None:
            raise self.model.DoesNotExist(f"No {self.model.kind.value} key has id {value!r}.")
        key: KeyT = self.using(router.db_for_write(self.model)).get(pk=parsed[1])
        return key

    def delete(self) -> tuple[int, dict[str, int]]:
        """A revocation of each key, through the manager: no key row goes without its event."""
        manager: Any = self.model._default_manager
        count = sum(manager.revoke(key) for key in self.order_by("pk"))
        return count, {self.model._meta.label: count}


class AbstractAPIKey(KeyRestrictions):
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
    # The opaque id of the key a rotation replaced this one with; set once, by the manager.
    replaced_by = models.CharField(max_length=64, blank=True, default="", editable=False)
    user: models.ForeignKey[Any, Any]
    user_id: Any

    class Meta:
        abstract = True
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefixed_hint})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new key is saved by the manager's ``issue``; a loaded one only for an edit of its
        name and description: an UPDATE of those fields alone, never an INSERT, so a key revoked
        meanwhile stays revoked (DoesNotExist) and a rotation's expiry is never written back."""
        if self._state.adding:
            if not kwargs.get("force_insert"):
                raise TypeError("Keys are made by their manager: create_key() or issue().")
            return super().save(*args, **kwargs)
        fields = frozenset(kwargs.get("update_fields") or EDITABLE_FIELDS)
        if not fields <= EDITABLE_FIELDS or args or kwargs.get("force_insert"):
            raise TypeError(
                "Only a key's name and description are saved; its state changes through its "
                "manager (rotate, revoke)."
            )
        keys = type(self)._default_manager.db_manager(router.db_for_write(type(self)))
        if not keys.filter(pk=self.pk).update(**{name: getattr(self, name) for name in fields}):
            raise self.DoesNotExist("The key was revoked meanwhile; nothing was saved.")

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        """Revoke the key through its manager (``revoke``), recorded as revoked."""
        revoked = int(type(self)._default_manager.revoke(self))
        return revoked, {self._meta.label: revoked}

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
            raise ValidationError({"name": gettext("Name must not be blank.")})
        if CONTROL.search(self.name):
            raise ValidationError({"name": gettext("Name must not contain control characters.")})
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            raise ValidationError(
                {
                    "description": gettext("Description must be at most %(maximum)d characters.")
                    % {"maximum": MAX_DESCRIPTION_LENGTH}
                }
            )
        if CONTROL.search(self.description.replace("\n", "").replace("\t", "")):
            raise ValidationError(
                {"description": gettext("Description must not contain control characters.")}
            )
        if self._state.adding:
            validate_expiry(self.expires_at, kind=self.kind)
            self.owner_checks()
            self.check_scopes()
            self.check_restrictions()

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
        errors = [
            gettext('No permission "%(scope)s" exists.') % {"scope": scope}
            for scope in sorted(wanted - known)
        ]
        if self.user_id is not None:  # else judged once the owner is set (the admin's form)
            errors += [
                gettext(
                    'The owner does not have "%(scope)s"; a key cannot carry more than its owner.'
                )
                % {"scope": scope}
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
        """The one rule every path applies: not expired, not disabled, uses left (or no count),
        its user still active."""
        return (
            not self.is_expired(now)
            and not self.disabled
            and self.remaining_uses != 0
            and bool(self.user.is_active)
        )

    def last_used_is_due(self, now: datetime) -> bool:
        interval = phoenix_settings.LAST_USED_INTERVAL
        return self.last_used_at is None or now - self.last_used_at >= interval

    def record_use(self, now: datetime, address: restrictions.IPAddress | None = None) -> bool:
        """Write last_used_at (and ``address`` into last_used_from) at most once per interval;
        True when a write happened."""
        if not self.last_used_is_due(now):
            return False
        stale = Q(last_used_at__isnull=True) | Q(
            last_used_at__lte=now - phoenix_settings.LAST_USED_INTERVAL
        )
        recent = restrictions.with_address(self.last_used_from, address, now)
        # The condition makes concurrent processes write once between them, not once each.
        written = (
            type(self)
            ._default_manager.filter(stale, pk=self.pk)
            .update(last_used_at=now, last_used_from=recent)
        )
        self.last_used_at, self.last_used_from = now, recent
        return bool(written)

    def rekey(self, current: str) -> bool:
        """Move a digest made with a fallback secret onto the current secret; False when the
        key was revoked meanwhile (its cached entries are named by the current digest, so a
        revocation must find that digest on the row)."""
        from ..signals import key_rekeyed

        keys = type(self)._default_manager.db_manager(router.db_for_write(type(self)))
        moved = keys.filter(pk=self.pk, digest=self.digest).update(digest=current)
        self.digest = current
        if not moved:  # a concurrent request moved it first, or the key is gone
            return bool(keys.filter(pk=self.pk, digest=current).exists())
        logger.info(
            "Re-keyed %s key %s to the current PHOENIX_SECRET.", self.kind.value, self.key_id
        )
        key_rekeyed.send(sender=type(self), key=self)
        return True


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
        help_text=_("Audit only: the key keeps working when this user is deleted."),
    )

    objects = KeyManager.from_queryset(APIKeyQuerySet)()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("system API key")
        verbose_name_plural = _("system API keys")

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

    objects = KeyManager.from_queryset(APIKeyQuerySet)()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("user API key")
        verbose_name_plural = _("user API keys")
        permissions = (("view_all_userkeys", _("Can view and revoke every user's API keys")),)
        # A user's keys newest first (their list, their admin page) without reading others'.
        indexes = (models.Index(fields=("user", "id"), name="phoenix_apikeys_userkey_owner"),)

    def owner_checks(self) -> None:
        if self.user_id is None:
            return
        if is_system_user(self.user):
            raise ValidationError(
                {"user": gettext("The system user owns no user keys; create a system key instead.")}
            )
        if not self.user.is_active:
            raise ValidationError(
                {"user": gettext("The user is inactive; the key would not work.")}
            )


KEY_MODELS: dict[KeyKind, type[AbstractAPIKey]] = {KeyKind.SYSTEM: SystemKey, KeyKind.USER: UserKey}


def find_key_by_id(value: str) -> AbstractAPIKey | None:
    """The key of either kind an opaque id names, its owner loaded; None when there is none."""
    parsed = parse_key_id(value)
    if parsed is None:
        return None
    model = KEY_MODELS[parsed[0]]
    keys = model._default_manager.db_manager(router.db_for_write(model))
    key: AbstractAPIKey | None = keys.select_related("user").filter(pk=parsed[1]).first()
    return key


@sensitive_variables()
def find_key_by_plaintext(text: str) -> AbstractAPIKey | None:
    """The stored key a leaked plaintext names; MalformedKey when it is not one of ours."""
    parsed = parse_key(text, phoenix_settings.prefixes)
    found: AbstractAPIKey | None = KEY_MODELS[parsed.kind]._default_manager.find_by_plaintext(
        parsed.plaintext
    )
    return found
