"""The system user: the one Django user system keys and the admin secret act as."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.db import models, router
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import lookup
from ..conf import phoenix_settings

BINDING = 1  # the primary key of the one SystemUser row


class SystemUser(models.Model):
    """Which user is the system user: bound by identity, so a rename moves nothing."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("system user binding")
        verbose_name_plural = _("system user bindings")

    def __str__(self) -> str:
        return gettext("system user %(pk)s") % {"pk": self.user_id}


def system_user() -> AbstractBaseUser:
    """The first system user: bound on first need, with a password nobody can use."""
    using = router.db_for_write(SystemUser)
    # The binding is row 1 (made by get_or_create(pk=1) below): one indexed query, no ORM
    # compilation, as a key's lookup (the admin secret is checked with it on every request the
    # key cache cannot answer).
    binding = lookup.find(SystemUser, "id", [BINDING], using)
    if binding is not None:
        user: AbstractBaseUser = binding.user
        return user
    return _bind_system_user(using)


def _bind_system_user(using: str) -> AbstractBaseUser:
    """Adopt the user existing system keys act as; else get or create SYSTEM_USERNAME."""
    from .keys import SystemKey

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
    binding, _ = SystemUser.objects.using(using).get_or_create(pk=BINDING, defaults={"user": user})
    bound: AbstractBaseUser = binding.user
    return bound


def system_user_id() -> Any:
    """The system user's primary key, or None while nothing is bound yet; never creates it."""
    using = router.db_for_write(SystemUser)  # the binding is made there, and read at once
    return SystemUser.objects.using(using).values_list("user_id", flat=True).first()


def is_system_user(user: Any) -> bool:
    """By identity: the bound user, whatever its name is now."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    return bool(user.pk == system_user_id())
