"""Receivers that keep the cache honest and announce each revocation exactly once.

A change of a key's expiry (saved with ``update_fields`` naming ``expires_at``, as a rotation
does) retires the cache's entries as a revocation does.

A revocation retires the cache's entries before it writes (so a revocation the cache cannot
hear of is refused, raising cache.CacheUnreachable, rather than reported done) and once more
after its transaction commits. Each revocation is recorded (models.KeyEvent) in the delete's
transaction, as the action ``audit.acting`` names (``revoked`` unless told otherwise).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from . import audit, cache
from .models import AbstractAPIKey, KeyEvent, SystemKey, UserKey, is_system_user
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
    if rows:
        cache.invalidate(using)


@receiver(post_delete, sender=SystemKey)
@receiver(post_delete, sender=UserKey)
def revoke(
    sender: type[AbstractAPIKey], instance: AbstractAPIKey, using: str, **kwargs: Any
) -> None:
    if not getattr(instance, CLAIMED, True):
        return  # another delete got there first and announced it
    logger.info("Revoked %s key %s.", instance.kind.value, instance.key_id)
    # In the delete's transaction: a revocation rolled back leaves no event.
    acting = audit.current()
    if _deleted_with(kwargs.get("origin"), acting.actor_user):
        # Someone deleting their own account: the event keeps their name, not a link to a row
        # gone by the commit.
        KeyEvent.objects.using(using).record(
            acting.revocation, instance, actor=None, label=acting.actor_label
        )
    else:
        KeyEvent.objects.using(using).record(acting.revocation, instance)
    key_revoked.send(sender=sender, key=instance)


def _deleted_with(origin: Any, actor: Any) -> bool:
    """Whether the deletion that started with ``origin`` (an instance or a queryset) removes the
    user ``actor`` too."""
    if actor is None or origin is None or isinstance(origin, AbstractAPIKey):
        return False
    model = getattr(origin, "model", type(origin))
    if getattr(model, "_meta", None) is None:
        return False
    if model._meta.concrete_model is not actor._meta.concrete_model:
        return False
    if isinstance(origin, models.Model):
        return bool(origin.pk == actor.pk)
    return bool(origin.filter(pk=actor.pk).exists())


@receiver(pre_save, sender=SystemKey)
@receiver(pre_save, sender=UserKey)
def expiry_changing(
    sender: type[AbstractAPIKey], instance: AbstractAPIKey, update_fields: Any, **kwargs: Any
) -> None:
    """A key's expiry moved (a rotation's grace period): every cached copy holds the old one,
    so the change is refused, like a revocation, when the cache cannot be told."""
    if update_fields is not None and "expires_at" in update_fields:
        cache.retire_now(required=True)


@receiver(post_save, sender=SystemKey)
@receiver(post_save, sender=UserKey)
def expiry_changed(
    sender: type[AbstractAPIKey],
    instance: AbstractAPIKey,
    using: str,
    update_fields: Any,
    **kwargs: Any,
) -> None:
    if update_fields is not None and "expires_at" in update_fields:
        cache.retire_after_commit(using)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def user_changing(
    sender: Any, instance: Any, using: str, update_fields: Any, **kwargs: Any
) -> None:
    """Deactivation, demotion or any other change to a user must reach every cached key. Only a
    user that keys act as can have cached entries, so only their change is refused when the
    cache cannot be told."""
    if _harmless(instance, update_fields):
        return
    keys_act_as_them = is_system_user(instance) or (
        UserKey._default_manager.using(using).filter(user=instance.pk).exists()
    )
    cache.retire_now(required=keys_act_as_them)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def user_changed(sender: Any, instance: Any, using: str, update_fields: Any, **kwargs: Any) -> None:
    # After the write, not before: outside a transaction on_commit runs at once.
    if not kwargs.get("created") and not _harmless(instance, update_fields):
        cache.retire_after_commit(using)


def _harmless(instance: Any, update_fields: Any) -> bool:
    if instance._state.adding:  # a new user: no key can act as them yet
        return True
    return update_fields is not None and set(update_fields) <= HARMLESS_USER_UPDATES


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def user_deleted(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    # Their keys went first (CASCADE), each refused if the cache could not be told.
    cache.invalidate(using, required=False)
