"""The audit trail: KeyEvent, one row per change of a key's life or use of the admin secret.

History only: nothing a key can do is read from it, so pruning it changes no key's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import audit
from ..keys import Credential, KeyKind

if TYPE_CHECKING:
    from .keys import AbstractAPIKey


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
        from ..signals import key_event_recorded

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
        using = router.db_for_write(self.model)
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

    # The values are stored and filtered on; the labels are what the admin shows. (django-stubs
    # types a member with a lazy label as its (value, label) tuple: at run time it is a str.)
    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        ROTATED = "rotated", _("Rotated")
        REVOKED = "revoked", _("Revoked")
        EXPIRED_PRUNED = "expired_pruned", _("Expired Pruned")
        LEAK_REVOKED = "leak_revoked", _("Leak Revoked")
        ADMIN_SECRET_USED = "admin_secret_used", _("Admin Secret Used")
        DISABLED = "disabled", _("Disabled")
        ENABLED = "enabled", _("Enabled")
        RESTRICTED = "restricted", _("Restrictions changed")

    class Kind(models.TextChoices):
        SYSTEM = KeyKind.SYSTEM.value, _("System")
        USER = KeyKind.USER.value, _("User")
        ADMIN_SECRET = Credential.ADMIN_SECRET.value, _("Admin Secret")

    action = models.CharField(max_length=32, choices=Action.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key_id = models.CharField(max_length=64, blank=True, help_text=_("Blank for the admin secret."))
    key_name = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=150, help_text=_('The username, or "command", "admin secret", "anonymous".')
    )
    source = models.CharField(max_length=64, blank=True, help_text=_("The client's address."))
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = KeyEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("key event")
        verbose_name_plural = _("key events")
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        what = self.key_id or gettext("admin secret")
        return gettext("%(action)s %(what)s by %(actor)s") % {
            "action": self.action,
            "what": what,
            "actor": self.actor_label,
        }

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
