"""The rules PHOENIX_SECRET and PHOENIX_ADMIN_SECRET must follow, in one place.

The system checks report these problems at start-up; the runtime guard refuses an admin secret
(or every key, for a broken PHOENIX_SECRET) that has any, since checks never run under WSGI/ASGI.
Both read the same inputs through ``conf.rule_context()``, so they cannot disagree. The rules
are pure functions of the values they are given: no settings are read here.

Character classes are ASCII on purpose: HTTP headers are latin-1, so a value whose only digit is
'٣' or whose only lowercase letter is 'é' satisfies ``str.isdigit``/``str.islower`` yet could never
be presented by a client.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.utils.translation import ngettext

MIN_LENGTH = 32
# Verification refuses longer credentials before hashing them.
MAX_CREDENTIAL_LENGTH = 1024
# Below this many estimated bits a secret is guessable however long it looks.
MIN_VARIETY_BITS = 128
DIGITS = frozenset(string.digits)
LOWERCASE = frozenset(string.ascii_lowercase)
# Printable ASCII without whitespace: what survives shells, env files and an HTTP header intact.
PRINTABLE = frozenset(string.ascii_letters + string.digits + string.punctuation)
GENERATE = 'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'


@dataclass(frozen=True)
class Problem:
    id: str
    variable: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.variable} {self.message}."


@dataclass(frozen=True)
class RuleContext:
    """What else is configured that the admin secret must not collide with."""

    secret_key: str | None
    key_prefixes: tuple[str, ...]
    secret_key_fallbacks: tuple[str, ...] = ()
    secret_fallbacks: tuple[str, ...] = ()  # PHOENIX_SECRET_FALLBACKS


def _generate_hint(until: str) -> str:
    return f"{GENERATE} (re-run until it has {until})."


def _strength_problems(variable: str, value: str, first_id: int) -> list[Problem]:
    """Length, an ASCII digit and an ASCII lowercase letter, ids ``first_id`` .. + 2."""
    problems = []
    if len(value) < MIN_LENGTH:
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id:03d}",
                variable,
                f"is {len(value)} characters long; it must be at least {MIN_LENGTH}",
                _generate_hint("a digit and a lowercase letter"),
            )
        )
    if DIGITS.isdisjoint(value):
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id + 1:03d}",
                variable,
                "must contain at least one ASCII digit (0-9)",
                _generate_hint("a digit"),
            )
        )
    if LOWERCASE.isdisjoint(value):
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id + 2:03d}",
                variable,
                "must contain at least one ASCII lowercase letter (a-z)",
                _generate_hint("a lowercase letter"),
            )
        )
    return problems


def _is_printable_ascii(value: str) -> bool:
    return PRINTABLE.issuperset(value)


def generate_secret() -> str:
    """A new value for PHOENIX_SECRET (or any secret these rules judge): 64 URL-safe
    characters, drawn again in the rare case one lacks a digit or a lowercase letter."""
    while True:
        value = secrets.token_urlsafe(48)
        if not secret_problems(value) and estimated_bits(value) >= MIN_VARIETY_BITS:
            return value


def secret_problems(secret: str | None) -> list[Problem]:
    """Every rule PHOENIX_SECRET breaks; an empty list means it may be used."""
    if not secret:
        return [
            Problem(
                "phoenix_apikeys.E001",
                "PHOENIX_SECRET",
                "is not set; API keys cannot be verified without it",
                "Set PHOENIX_SECRET in your settings, or in the environment with no "
                "PHOENIX_SECRET setting: a setting, even None or empty, hides the environment "
                "variable (32+ characters, with a digit and a lowercase letter).",
            )
        ]
    problems = _strength_problems("PHOENIX_SECRET", secret, first_id=2)
    if not _is_printable_ascii(secret):
        problems.append(
            Problem(
                "phoenix_apikeys.E005",
                "PHOENIX_SECRET",
                "must be printable ASCII with no whitespace",
                "Whitespace, control and non-ASCII characters are lost or changed by shells and "
                "env files; use letters, digits and punctuation only.",
            )
        )
    return problems


def admin_secret_problems(
    admin_secret: str | None, secret: str | None, context: RuleContext
) -> list[Problem]:
    """Every rule PHOENIX_ADMIN_SECRET breaks; an unset admin secret breaks none.

    ``context`` is required rather than defaulted, so no caller can silently skip the
    SECRET_KEY and key-prefix rules.
    """
    if not admin_secret:
        return []
    problems = []
    if not secret:
        problems.append(
            Problem(
                "phoenix_apikeys.E011",
                "PHOENIX_ADMIN_SECRET",
                "cannot be set while PHOENIX_SECRET is not configured",
                "Set PHOENIX_SECRET first, or remove PHOENIX_ADMIN_SECRET.",
            )
        )
    problems += _strength_problems("PHOENIX_ADMIN_SECRET", admin_secret, first_id=12)
    if admin_secret in (secret, *context.secret_fallbacks):
        problems.append(
            Problem(
                "phoenix_apikeys.E015",
                "PHOENIX_ADMIN_SECRET",
                "must differ from PHOENIX_SECRET and from PHOENIX_SECRET_FALLBACKS",
                "Use two independent random values.",
            )
        )
    return problems + _presentable_problems(admin_secret, context)


def _presentable_problems(admin_secret: str, context: RuleContext) -> list[Problem]:
    """Rules without which the admin secret could never authenticate, or would be shared."""
    problems = []
    if not _is_printable_ascii(admin_secret):
        problems.append(
            Problem(
                "phoenix_apikeys.E016",
                "PHOENIX_ADMIN_SECRET",
                "must be printable ASCII with no whitespace; otherwise it can never be sent",
                "HTTP headers are latin-1 and the Authorization header is split on whitespace; "
                f"use letters, digits and punctuation only. {GENERATE}.",
            )
        )
    if any(admin_secret.startswith(prefix) for prefix in context.key_prefixes):
        problems.append(
            Problem(
                "phoenix_apikeys.E017",
                "PHOENIX_ADMIN_SECRET",
                "starts with an API key prefix (PHOENIX_APIKEYS SYSTEM_KEY_PREFIX or "
                "USER_KEY_PREFIX), so it is parsed as a key and can never authenticate",
                f"Use a value that starts with neither key prefix. {GENERATE}.",
            )
        )
    if admin_secret in (context.secret_key, *context.secret_key_fallbacks):
        problems.append(
            Problem(
                "phoenix_apikeys.E018",
                "PHOENIX_ADMIN_SECRET",
                "must differ from SECRET_KEY and SECRET_KEY_FALLBACKS",
                "Use an independent random value, so leaking one does not leak the other.",
            )
        )
    if len(admin_secret) > MAX_CREDENTIAL_LENGTH:
        problems.append(
            Problem(
                "phoenix_apikeys.E019",
                "PHOENIX_ADMIN_SECRET",
                f"is {len(admin_secret)} characters long; a credential over "
                f"{MAX_CREDENTIAL_LENGTH} is refused unread, so it could never authenticate",
                f"{GENERATE}.",
            )
        )
    return problems


def estimated_bits(value: str) -> float:
    """Length times the Shannon entropy per character of the value's own character frequencies.

    Only an estimate of variety (a random-looking but known value scores high), yet it reliably
    catches long secrets built from a few repeated characters.
    """
    length = len(value)
    counts = Counter(value).values()
    return -sum(count * math.log2(count / length) for count in counts)


def deploy_problems(
    secret: str | None, admin_secret: str | None, context: RuleContext
) -> list[Problem]:
    """Deploy warnings (``check --deploy``): risky but usable, so the runtime does not refuse."""
    problems = []
    if secret and secret == context.secret_key:
        problems.append(
            Problem(
                "phoenix_apikeys.W002",
                "PHOENIX_SECRET",
                "equals SECRET_KEY",
                "Use a separate secret, so rotating one does not invalidate the other.",
            )
        )
    for variable, value in (("PHOENIX_SECRET", secret), ("PHOENIX_ADMIN_SECRET", admin_secret)):
        if value and estimated_bits(value) < MIN_VARIETY_BITS:
            problems.append(
                Problem(
                    "phoenix_apikeys.W003",
                    variable,
                    f"has little variety (under {MIN_VARIETY_BITS} estimated bits from its "
                    "character frequencies)",
                    f"{GENERATE}.",
                )
            )
    return problems


# Characters a name or description may not hold, and that a terminal listing must not print:
# controls (C0, DEL, C1) and the bidirectional overrides that reorder what a reader sees.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# The units a duration is said in, largest first.
_UNITS: tuple[tuple[int, Callable[[int], str]], ...] = (
    (86400, lambda n: ngettext("%(count)d day", "%(count)d days", n)),
    (3600, lambda n: ngettext("%(count)d hour", "%(count)d hours", n)),
    (60, lambda n: ngettext("%(count)d minute", "%(count)d minutes", n)),
    (1, lambda n: ngettext("%(count)d second", "%(count)d seconds", n)),
)


def duration_text(lifetime: timedelta) -> str:
    """``90 days``, ``12 hours``, ``30 minutes`` or ``45 seconds``: the largest whole unit."""
    seconds = int(lifetime.total_seconds())
    size, phrase = next(
        unit for unit in _UNITS if (seconds % unit[0] == 0 and seconds >= unit[0]) or unit[0] == 1
    )
    return phrase(seconds // size) % {"count": seconds // size}
