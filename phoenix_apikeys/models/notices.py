"""Expiry notices already sent: at most one per key per threshold."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..ids import key_id
from ..keys import KeyKind


class ExpiryNotice(models.Model):
    """One expiry notice sent: at most one per key per threshold, ever (management/notices.py).

    The key is named by kind and primary key, not by a foreign key, so the record outlives the
    key (revoked, pruned) and its notices are never sent again.
    """

    kind = models.CharField(
        max_length=6, choices=[(KeyKind.SYSTEM.value, _("system")), (KeyKind.USER.value, _("user"))]
    )
    key_pk = models.BigIntegerField()
    threshold = models.BigIntegerField(help_text=_("Seconds before the expiry; 0: expired."))
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("expiry notice")
        verbose_name_plural = _("expiry notices")
        ordering = ("-sent_at", "-id")
        constraints = (
            models.UniqueConstraint(
                fields=("kind", "key_pk", "threshold"), name="phoenix_apikeys_one_expiry_notice"
            ),
        )

    def __str__(self) -> str:
        return gettext("%(key)s at %(threshold)d s") % {
            "key": key_id(KeyKind(self.kind), self.key_pk),
            "threshold": self.threshold,
        }
