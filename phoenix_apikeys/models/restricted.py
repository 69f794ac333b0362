"""A key's restrictions: their fields and rules on the model (``KeyRestrictions``, a base of
every key) and their changes on its manager (``RestrictingManager``, a base of ``KeyManager``).
What each restriction does to a request is ``restrictions.py``'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, router, transaction

from .. import cache, restrictions
from .events import KeyEvent

if TYPE_CHECKING:
    from .keys import AbstractAPIKey

logger = logging.getLogger("phoenix_apikeys")
KeyT = TypeVar("KeyT", bound="AbstractAPIKey")
Action = KeyEvent.Action

RESTRICTIONS = ("allowed_networks", "rate_limit_requests", "rate_limit_per", "remaining_uses")
# What a rotation's replacement takes from the key it replaces, besides its owner and texts.
INHERITED = ("scopes", *RESTRICTIONS, "disabled")


class KeyRestrictions(models.Model):
    # CIDRs, space-separated; empty: anywhere.
    allowed_networks = models.TextField(blank=True, default="", editable=False)
    rate_limit_requests = models.PositiveIntegerField(null=True, blank=True, editable=False)
    rate_limit_per = models.PositiveIntegerField(null=True, blank=True, editable=False)
    remaining_uses = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    disabled = models.BooleanField(default=False, editable=False)
    # JSON: the last distinct client addresses, newest first, each with its time.
    last_used_from = models.TextField(blank=True, default="", editable=False)

    class Meta:
        abstract = True

    def check_restrictions(self) -> None:
        """Networks (a list, or stored text) judged and put in stored form; the rate limit was
        checked when it was set, and remaining uses by their field."""
        networks, errors = restrictions.network_problems(self.network_list)
        if errors:
            raise ValidationError({"allowed_networks": errors})
        self.allowed_networks = " ".join(networks)

    @property
    def network_list(self) -> list[str]:
        networks = self.allowed_networks
        return networks.split() if isinstance(networks, str) else list(networks)

    @property
    def rate_limit(self) -> dict[str, int] | None:
        """``{"requests": N, "per": seconds}``, or None; set at creation like a field."""
        if self.rate_limit_requests is None or self.rate_limit_per is None:
            return None
        return {"requests": self.rate_limit_requests, "per": self.rate_limit_per}

    @rate_limit.setter
    def rate_limit(self, value: Any) -> None:
        if restrictions.rate_limit_problems(value):
            raise ValidationError({"rate_limit": restrictions.rate_limit_problems(value)})
        self.rate_limit_requests, self.rate_limit_per = (
            (None, None) if value is None else (value["requests"], value["per"])
        )

    @property
    def recent_addresses(self) -> list[dict[str, str]]:
        """``last_used_from``: ``[{"address": ..., "at": ISO time}]``, newest first."""
        return restrictions.recent_addresses(self.last_used_from)

    @property
    def is_restricted(self) -> bool:
        """Whether a request must pass more than expiry, owner and scopes (``restrictions``)."""
        return bool(
            self.allowed_networks
            or self.rate_limit_requests is not None
            or self.remaining_uses is not None
        )


class RestrictingManager(models.Manager[KeyT]):
    """Disable, enable and restrict: changes of state, as ``KeyManager``'s others are."""

    def disable(self, key: KeyT) -> bool:
        """Refuse ``key`` everywhere until ``enable``: True when it changed. Like a revocation,
        it returns once every process's cached copy is retired (cache.CacheUnreachable, and
        nothing changed, when the cache cannot be told); DoesNotExist when the key is gone."""
        return self._set_state(key, Action.DISABLED, disabled=True)  # type: ignore[arg-type]

    def enable(self, key: KeyT) -> bool:
        """Undo ``disable``: True when it changed."""
        return self._set_state(key, Action.ENABLED, disabled=False)  # type: ignore[arg-type]

    def restrict(self, key: KeyT, **changes: Any) -> bool:
        """Change a key's restrictions: ``allowed_networks`` (a list of CIDRs), ``rate_limit``
        (``{"requests": N, "per": seconds}`` or None) and ``remaining_uses`` (or None); one
        ``restricted`` event. Raises ValidationError for a bad value, and as ``disable``."""
        unknown = set(changes) - {"allowed_networks", "rate_limit", "remaining_uses"}
        if unknown:
            raise TypeError(f"Not a restriction: {', '.join(sorted(unknown))}.")
        probe = self.model(**changes)  # the setters and the model's own checks judge values
        others = [field.name for field in self.model._meta.fields if field.name != "remaining_uses"]
        probe.clean_fields(exclude=others)
        probe.check_restrictions()
        fields = {
            name: getattr(probe, name)
            for name in RESTRICTIONS
            if name in changes or (name.startswith("rate_limit_") and "rate_limit" in changes)
        }
        using = router.db_for_write(self.model)
        with transaction.atomic(using=using):
            if key.remaining_uses == 0 and fields.get("remaining_uses", 0) != 0:
                # A spent key counted as no live key: given uses again, it must fit the limit.
                self.check_owner(key, using, counted=True)  # type: ignore[attr-defined]
            return self._set_state(key, Action.RESTRICTED, **fields)  # type: ignore[arg-type]

    def _set_state(self, key: KeyT, action: str, **fields: Any) -> bool:
        """Write ``fields`` on the key's locked row, its cached copies retired first, and record
        ``action``; False (no event) when they already held."""
        using = router.db_for_write(self.model)
        with transaction.atomic(using=using):
            rows = self.db_manager(using).select_for_update().filter(pk=key.pk)
            current = rows.values(*fields, "digest").first()
            if current is None:
                raise self.model.DoesNotExist(f"No {self.model.kind.value} key has id {key.pk}.")
            if all(current[name] == value for name, value in fields.items()):
                return False
            cache.retire([cache.key_name(current["digest"])], using)
            rows.update(**fields)
            KeyEvent.objects.record(action, key)
        for name, value in fields.items():
            setattr(key, name, value)
        logger.info("%s %s key %s.", action.capitalize(), key.kind.value, key.key_id)
        return True
