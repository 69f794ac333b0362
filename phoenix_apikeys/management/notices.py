"""Expiry notices: which keys are due one, who gets it, and sending each exactly once.

A key with an expiry gets a notice for the nearest EXPIRY_NOTICE_THRESHOLDS value it has
crossed (``expires_at - now <= threshold``), unless it already got that one; farther thresholds
it skipped (a key first seen 12 hours before its expiry) are never sent. Each notice is claimed
by inserting its ``ExpiryNotice`` row and sent inside the same transaction: a concurrent run
meets the unique constraint and skips it, and an email that fails rolls the claim back, so the
next run tries again. A notice never carries a secret: name, opaque id, hint and expiry only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, router, transaction
from django.utils.translation import gettext

from ..conf import phoenix_settings, seconds
from ..keys import KeyKind
from ..models import KEY_MODELS, AbstractAPIKey, ExpiryNotice
from ..notifications import admin_addresses, owner_address
from ..rules import CONTROL, duration_text

SUBJECT_PREFIX = "[phoenix_apikeys]"


def thresholds() -> tuple[int, ...]:
    """EXPIRY_NOTICE_THRESHOLDS in whole seconds, nearest (smallest) first, no repeats."""
    found = {int(seconds(value) or 0) for value in phoenix_settings.EXPIRY_NOTICE_THRESHOLDS}
    return tuple(sorted(found))


def nearest_crossed(expires_at: datetime, now: datetime, among: Sequence[int]) -> int | None:
    """The smallest threshold (seconds, ascending ``among``) that ``expires_at`` has crossed.

    An expired key has crossed only 0: without 0 among the thresholds it is due nothing, never
    an "expires within" notice that would be false.
    """
    left = expires_at - now
    if left <= timedelta(0):
        return 0 if 0 in among else None
    return next((each for each in among if each > 0 and left <= timedelta(seconds=each)), None)


def when(threshold: int) -> str:
    """``expires within 7 days`` or ``has expired``."""
    if threshold == 0:
        return gettext("has expired")
    return gettext("expires within %(duration)s") % {
        "duration": duration_text(timedelta(seconds=threshold))
    }


@dataclass(frozen=True)
class Due:
    """A notice a key is due: its nearest crossed threshold, and who would get it."""

    key: AbstractAPIKey
    threshold: int
    recipients: tuple[str, ...]
    # Why it cannot be sent (no address to send it to); None when it can.
    problem: str | None = None


def due_notices(now: datetime) -> Iterator[Due]:
    """Every notice due now and not yet sent, system keys first, soonest expiry first."""
    among = thresholds()
    if not among:
        return
    admins = admin_addresses()
    for kind, model in KEY_MODELS.items():
        # A key already replaced by a rotation dies with its grace period: nothing to do.
        candidates = model._default_manager.filter(
            expires_at__isnull=False,
            expires_at__lte=now + timedelta(seconds=among[-1]),
            replaced_by="",
        )
        sent = set(
            ExpiryNotice.objects.filter(
                kind=kind.value, key_pk__in=candidates.values("pk")
            ).values_list("key_pk", "threshold")
        )
        for key in candidates.select_related("user").order_by("expires_at", "pk"):
            assert key.expires_at is not None  # filtered above; for the type checker
            threshold = nearest_crossed(key.expires_at, now, among)
            if threshold is None or (key.pk, threshold) in sent:
                continue
            if kind is KeyKind.SYSTEM:
                problem = None if admins else gettext("ADMINS is empty")
                yield Due(key, threshold, admins, problem)
            else:
                address = owner_address(key.user)
                problem = None if address else gettext("its owner has no email address")
                yield Due(key, threshold, (address,) if address else (), problem)


def message(due: Due) -> EmailMessage:
    """The plain-text email of one notice: metadata only, never a secret (in the active
    language: a command runs in LANGUAGE_CODE's)."""
    key = due.key
    assert key.expires_at is not None
    name = CONTROL.sub("?", key.name)  # headers and terminals get no control character
    status = when(due.threshold)
    if due.threshold == 0:
        advice = gettext(
            "The key no longer authenticates. To restore access, create a new key and put it\n"
            "where this one was used."
        )
    else:
        advice = gettext(
            "To keep whatever uses this key working, rotate it, or create a new key, put the\n"
            "new key where this one is used, and then revoke this one before it expires."
        )
    facts = [
        gettext("Name:     %(name)s") % {"name": name},
        gettext("Id:       %(id)s") % {"id": key.key_id},
        gettext("Hint:     %(hint)s") % {"hint": key.prefixed_hint},
    ]
    if key.kind is not KeyKind.SYSTEM:
        facts.append(gettext("Owner:    %(owner)s") % {"owner": key.user.get_username()})
    expires = key.expires_at.astimezone(dt_timezone.utc).isoformat(timespec="seconds")
    facts.append(gettext("Expires:  %(expires)s") % {"expires": expires})
    values = {"kind": key.kind.value, "name": name, "status": status}
    body = (
        gettext('The %(kind)s API key "%(name)s" %(status)s.') % values
        + "\n\n"
        + "\n".join(facts)
        + f"\n\n{advice}\n"
    )
    return EmailMessage(
        subject=f"{SUBJECT_PREFIX} " + gettext('API key "%(name)s" %(status)s') % values,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(due.recipients),
    )


def send_once(due: Due) -> bool:
    """Claim the notice and send it in one transaction; False when another run has claimed it.

    An email that fails raises: the claim is rolled back, and the next run sends it.
    """
    using = router.db_for_write(ExpiryNotice)
    try:
        with transaction.atomic(using=using):
            ExpiryNotice.objects.using(using).create(
                kind=due.key.kind.value, key_pk=due.key.pk, threshold=due.threshold
            )
            message(due).send()
    except IntegrityError:  # the unique constraint: sent, or being sent, by another run
        return False
    return True
