"""Receivers that keep the cache honest and announce revocations."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import cache
from .conf import phoenix_settings
from .models import AbstractAPIKey, SystemKey, UserKey
from .signals import key_revoked

logger = logging.getLogger("phoenix_apikeys")


@receiver(post_delete, sender=SystemKey)
@receiver(post_delete, sender=UserKey)
def revoke(sender: type[AbstractAPIKey], instance: AbstractAPIKey, **kwargs: Any) -> None:
    cache.forget([instance.digest])
    logger.info("Revoked %s key %s.", instance.kind.value, instance.pk)
    key_revoked.send(sender=sender, key=instance)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def forget_user_keys(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A deactivated user's keys must stop at once, even from the cache."""
    if not phoenix_settings.CACHE_ALIAS:
        return
    # Any save may rename, deactivate or create the system user: one delete, always safe.
    cache.forget_system_user()
    if created:
        return
    digests = [
        *UserKey.objects.filter(user=instance).values_list("digest", flat=True),
        *SystemKey.objects.filter(user=instance).values_list("digest", flat=True),
    ]
    cache.forget(digests)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def forget_deleted_system_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    cache.forget_system_user()
