"""A new key's expiry: the rules every creation surface applies (manager, REST, admin, commands)."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext

from ..conf import phoenix_settings
from ..keys import KeyKind
from ..rules import duration_text

# Every database stores this year in UTC, whatever offset the expiry was given with.
LAST_EXPIRY_YEAR = 9998


def validate_expiry(
    expires_at: datetime | None, now: datetime | None = None, *, kind: KeyKind = KeyKind.USER
) -> None:
    """A new key's expiry: in the future, and within the kind's MAX_KEY_LIFETIME when one is
    set (then a key that never expires is refused too)."""
    lifetime = phoenix_settings.lifetime_policy(kind).maximum
    if expires_at is None:
        if lifetime is not None:
            raise ValidationError(
                {
                    "expires_at": gettext(
                        "Keys must expire here, within %(lifetime)s (MAX_KEY_LIFETIME)."
                    )
                    % {"lifetime": duration_text(lifetime)}
                }
            )
        return
    now = now or timezone.now()
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": gettext("Expiry must include a time zone.")})
    try:
        in_utc = expires_at.astimezone(dt_timezone.utc)
    except OverflowError:
        in_utc = None
    if in_utc is None or in_utc.year > LAST_EXPIRY_YEAR:
        raise ValidationError(
            {
                "expires_at": gettext("Expiry must be before %(year)d.")
                % {"year": LAST_EXPIRY_YEAR + 1}
            }
        )
    if expires_at <= now:
        raise ValidationError({"expires_at": gettext("Expiry must be in the future.")})
    if lifetime is not None and expires_at > now + lifetime:
        raise ValidationError(
            {
                "expires_at": gettext("Expiry must be within %(lifetime)s (MAX_KEY_LIFETIME).")
                % {"lifetime": duration_text(lifetime)}
            }
        )
