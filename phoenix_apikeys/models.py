"""SystemKey and UserKey: digests and metadata only, never a plaintext key."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import models, router
from django.db.models import Q
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from .conf import phoenix_settings
from .keys import KeyKind, digest, display_hint, generate_key

logger = logging.getLogger("phoenix_apikeys")
KeyT = TypeVar("KeyT", bound="AbstractAPIKey")


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

    @method_decorator(sensitive_variables())
    def create_key(self, **fields: Any) -> tuple[KeyT, str]:
        """Create a key and return it with its plaintext, which exists nowhere else."""
        from .signals import key_created

        secret = phoenix_settings.secrets.secret
        if secret is None:
            raise MissingSecretError
        plaintext = generate_key(self.model.kind)
        key = self.model(digest=digest(plaintext, secret), hint=display_hint(plaintext), **fields)
        key.full_clean(exclude=["user", "created_by"])
        key.save(force_insert=True)
        logger.info("Created %s key %s.", key.kind.value, key.pk)
        key_created.send(sender=self.model, key=key)
        return key, plaintext


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

    user: models.ForeignKey[Any, Any]

    class Meta:
        abstract = True
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.name} ({self.kind.prefix}…{self.hint})"

    @property
    def prefixed_hint(self) -> str:
        return f"{self.kind.prefix}…{self.hint}"

    def clean(self) -> None:
        self.name = (self.name or "").strip()
        if not any(char.isprintable() and not char.isspace() for char in self.name):
            # Blank, or only invisible characters (zero-width spaces, byte-order marks).
            raise ValidationError({"name": "Name must not be blank."})
        if self._state.adding and self.expires_at is not None:
            validate_expiry(self.expires_at)

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


def validate_expiry(expires_at: datetime, now: datetime | None = None) -> None:
    """A new key's expiry must lie in the future and within MAX_KEY_LIFETIME."""
    now = now or timezone.now()
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": "Expiry must include a time zone."})
    if expires_at <= now:
        raise ValidationError({"expires_at": "Expiry must be in the future."})
    lifetime = phoenix_settings.MAX_KEY_LIFETIME
    if lifetime is not None and expires_at > now + lifetime:
        raise ValidationError(
            {"expires_at": f"Expiry must be within {lifetime.days} days (MAX_KEY_LIFETIME)."}
        )


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
