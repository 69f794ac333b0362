"""Receivers that keep the cache honest and announce each revocation exactly once."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db.models import F
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from . import cache
from .models import AbstractAPIKey, SystemKey, UserKey
from .signals import key_revoked

logger = logging.getLogger("phoenix_apikeys")

# Set on a key instance by ``claim``: whether this delete is the one that removes the row.
CLAIMED = "_phoenix_apikeys_claimed"
# Saves that touch only these fields change nothing a key's authentication depends on.
HARMLESS_USER_UPDATES = frozenset({"last_login"})


@receiver(pre_delete, sender=SystemKey)
@receiver(pre_delete, sender=UserKey)
def claim(
    sender: type[AbstractAPIKey], instance: AbstractAPIKey, using: str, **kwargs: Any
) -> None:
    """Lock the row inside the delete's transaction: of concurrent deletes of one key, only the
    first finds it (the others wait for its commit, then update nothing)."""
    rows = sender._default_manager.using(using).filter(pk=instance.pk).update(name=F("name"))
    setattr(instance, CLAIMED, bool(rows))


@receiver(post_delete, sender=SystemKey)
@receiver(post_delete, sender=UserKey)
def revoke(
    sender: type[AbstractAPIKey], instance: AbstractAPIKey, using: str, **kwargs: Any
) -> None:
    if not getattr(instance, CLAIMED, True):
        return  # another delete got there first and announced it
    cache.invalidate(using)
    logger.info("Revoked %s key %s.", instance.kind.value, instance.pk)
    key_revoked.send(sender=sender, key=instance)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def user_saved(
    sender: Any, instance: Any, created: bool, using: str, update_fields: Any, **kwargs: Any
) -> None:
    """Deactivation, demotion or any other change to a user must reach every cached key."""
    if created:
        return
    if update_fields is not None and set(update_fields) <= HARMLESS_USER_UPDATES:
        return
    cache.invalidate(using)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def user_deleted(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    cache.invalidate(using)
