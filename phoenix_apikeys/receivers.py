"""Receivers for changes of users, which keys act as: thin, each a call to the cache or the
key manager.

A change of a user (deactivation, demotion, any save but a login) retires the cached entries of
the keys acting as that user, and only those; it is refused, like a revocation, when the cache
cannot be told and such keys exist. A user's deletion revokes their keys through the manager
first, each recorded, before the CASCADE would delete them unrecorded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from . import audit, cache
from .models import SystemKey, UserKey, is_system_user
from .models.state import lock_owner

# Saves that touch only these fields change nothing a key's authentication depends on.
HARMLESS_USER_UPDATES = frozenset({"last_login"})


def entries_acting_as(user: Any, using: str) -> list[str]:
    """The cache entries that hold ``user``: their user keys', or every system key's and the
    admin secret's for the system user."""
    if is_system_user(user):
        digests = SystemKey._default_manager.using(using).values_list("digest", flat=True)
        return [cache.SYSTEM_USER, *map(cache.key_name, digests)]
    digests = (
        UserKey._default_manager.using(using).filter(user=user.pk).values_list("digest", flat=True)
    )
    return list(map(cache.key_name, digests))


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def user_changing(
    sender: Any, instance: Any, using: str, update_fields: Any, **kwargs: Any
) -> None:
    if _harmless(instance, update_fields):
        return
    if not transaction.get_autocommit(using):
        # In a transaction (the admin's): no key is made for them until this change commits.
        lock_owner(instance.pk, using)
    cache.retire_now(entries_acting_as(instance, using))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def user_changed(sender: Any, instance: Any, using: str, update_fields: Any, **kwargs: Any) -> None:
    # Listed at the commit, not now: a key committed meanwhile by another transaction (a
    # rotation) may have been cached with this user still active.
    if not kwargs.get("created") and not _harmless(instance, update_fields):
        cache.retire_after_commit(lambda: entries_acting_as(instance, using), using)


def _harmless(instance: Any, update_fields: Any) -> bool:
    if instance._state.adding:  # a new user: no key can act as them yet
        return True
    return update_fields is not None and set(update_fields) <= HARMLESS_USER_UPDATES


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL)
def user_deleting(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """Inside the deletion's transaction: each of their keys revoked and recorded. Their row is
    locked first, so no key is made for them meanwhile (``issue`` locks it too). Someone
    deleting their own account is named in the events, not linked to a row gone by the commit."""
    lock_owner(instance.pk, using)
    acting = audit.current()
    own_account = acting.actor_user is not None and acting.actor_user.pk == instance.pk
    actor = {"actor": None, "label": acting.actor_label} if own_account else {}
    for key in UserKey._default_manager.using(using).filter(user=instance.pk).order_by("pk"):
        UserKey.objects.revoke(key, **actor)
