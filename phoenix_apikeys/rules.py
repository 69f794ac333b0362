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

from django.utils.translation import gettext, ngettext

MIN_LENGTH = 32
# Verification refuses longer credentials before hashing them.
MAX_CREDENTIAL_LENGTH = 1024
# Below this many estimated bits a secret is guessable however long it looks.
MIN_VARIETY_BITS = 128
DIGITS = frozenset(string.digits)
LOWERCASE = frozenset(string.ascii_lowercase)
# Printable ASCII without whitespace: what survives shells, env files and an HTTP header intact.
PRINTABLE = frozenset(string.ascii_letters + string.digits + string.punctuation)
# The command the hints suggest for a new secret: a command, never translated.
GENERATE_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


@dataclass(frozen=True)
class Problem:
    """One broken rule: ``message`` is the whole sentence (translated when the problem is found,
    so ``manage.py check`` speaks the active language); ``variable`` names the setting."""

    id: str
    variable: str
    message: str
    hint: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RuleContext:
    """What else is configured that the admin secret must not collide with."""

    secret_key: str | None
    key_prefixes: tuple[str, ...]
    secret_key_fallbacks: tuple[str, ...] = ()
    secret_fallbacks: tuple[str, ...] = ()  # PHOENIX_SECRET_FALLBACKS


def _generate() -> str:
    return gettext("Generate one with: %(command)s.") % {"command": GENERATE_COMMAND}


def _strength_problems(variable: str, value: str, first_id: int) -> list[Problem]:
    """Length, an ASCII digit and an ASCII lowercase letter, ids ``first_id`` .. + 2."""
    problems = []
    command = {"command": GENERATE_COMMAND}
    if len(value) < MIN_LENGTH:
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id:03d}",
                variable,
                gettext(
                    "%(variable)s is %(length)d characters long; it must be at least %(minimum)d."
                )
                % {"variable": variable, "length": len(value), "minimum": MIN_LENGTH},
                gettext(
                    "Generate one with: %(command)s (re-run until it has a digit and a lowercase "
                    "letter)."
                )
                % command,
            )
        )
    if DIGITS.isdisjoint(value):
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id + 1:03d}",
                variable,
                gettext("%(variable)s must contain at least one ASCII digit (0-9).")
                % {"variable": variable},
                gettext("Generate one with: %(command)s (re-run until it has a digit).") % command,
            )
        )
    if LOWERCASE.isdisjoint(value):
        problems.append(
            Problem(
                f"phoenix_apikeys.E{first_id + 2:03d}",
                variable,
                gettext("%(variable)s must contain at least one ASCII lowercase letter (a-z).")
                % {"variable": variable},
                gettext("Generate one with: %(command)s (re-run until it has a lowercase letter).")
                % command,
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
                gettext("PHOENIX_SECRET is not set; API keys cannot be verified without it."),
                gettext(
                    "Set PHOENIX_SECRET in your settings, or in the environment with no "
                    "PHOENIX_SECRET setting: a setting, even None or empty, hides the environment "
                    "variable (32+ characters, with a digit and a lowercase letter)."
                ),
            )
        ]
    problems = _strength_problems("PHOENIX_SECRET", secret, first_id=2)
    if not _is_printable_ascii(secret):
        problems.append(
            Problem(
                "phoenix_apikeys.E005",
                "PHOENIX_SECRET",
                gettext("PHOENIX_SECRET must be printable ASCII with no whitespace."),
                gettext(
                    "Whitespace, control and non-ASCII characters are lost or changed by shells "
                    "and env files; use letters, digits and punctuation only."
                ),
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
                gettext(
                    "PHOENIX_ADMIN_SECRET cannot be set while PHOENIX_SECRET is not configured."
                ),
                gettext("Set PHOENIX_SECRET first, or remove PHOENIX_ADMIN_SECRET."),
            )
        )
    problems += _strength_problems("PHOENIX_ADMIN_SECRET", admin_secret, first_id=12)
    if admin_secret in (secret, *context.secret_fallbacks):
        problems.append(
            Problem(
                "phoenix_apikeys.E015",
                "PHOENIX_ADMIN_SECRET",
                gettext(
                    "PHOENIX_ADMIN_SECRET must differ from PHOENIX_SECRET and from "
                    "PHOENIX_SECRET_FALLBACKS."
                ),
                gettext("Use two independent random values."),
            )
        )
    return problems + _presentable_problems(admin_secret, context)


def _presentable_problems(admin_secret: str, context: RuleContext) -> list[Problem]:
    """Rules without which the admin secret could never authenticate, or would be shared."""
    problems = _unsendable_problems(admin_secret, context)
    if admin_secret in (context.secret_key, *context.secret_key_fallbacks):
        problems.append(
            Problem(
                "phoenix_apikeys.E018",
                "PHOENIX_ADMIN_SECRET",
                gettext(
                    "PHOENIX_ADMIN_SECRET must differ from SECRET_KEY and SECRET_KEY_FALLBACKS."
                ),
                gettext("Use an independent random value, so leaking one does not leak the other."),
            )
        )
    if len(admin_secret) > MAX_CREDENTIAL_LENGTH:
        problems.append(
            Problem(
                "phoenix_apikeys.E019",
                "PHOENIX_ADMIN_SECRET",
                gettext(
                    "PHOENIX_ADMIN_SECRET is %(length)d characters long; a credential over "
                    "%(maximum)d is refused unread, so it could never authenticate."
                )
                % {"length": len(admin_secret), "maximum": MAX_CREDENTIAL_LENGTH},
                _generate(),
            )
        )
    return problems


def _unsendable_problems(admin_secret: str, context: RuleContext) -> list[Problem]:
    """A secret no header can carry, or one that reads as a key."""
    problems = []
    if not _is_printable_ascii(admin_secret):
        problems.append(
            Problem(
                "phoenix_apikeys.E016",
                "PHOENIX_ADMIN_SECRET",
                gettext(
                    "PHOENIX_ADMIN_SECRET must be printable ASCII with no whitespace; otherwise "
                    "it can never be sent."
                ),
                gettext(
                    "HTTP headers are latin-1 and the Authorization header is split on "
                    "whitespace; use letters, digits and punctuation only. Generate one with: "
                    "%(command)s."
                )
                % {"command": GENERATE_COMMAND},
            )
        )
    if any(admin_secret.startswith(prefix) for prefix in context.key_prefixes):
        problems.append(
            Problem(
                "phoenix_apikeys.E017",
                "PHOENIX_ADMIN_SECRET",
                gettext(
                    "PHOENIX_ADMIN_SECRET starts with an API key prefix (PHOENIX_APIKEYS "
                    "SYSTEM_KEY_PREFIX or USER_KEY_PREFIX), so it is parsed as a key and can never "
                    "authenticate."
                ),
                gettext(
                    "Use a value that starts with neither key prefix. Generate one with: "
                    "%(command)s."
                )
                % {"command": GENERATE_COMMAND},
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
                gettext("PHOENIX_SECRET equals SECRET_KEY."),
                gettext("Use a separate secret, so rotating one does not invalidate the other."),
            )
        )
    for variable, value in (("PHOENIX_SECRET", secret), ("PHOENIX_ADMIN_SECRET", admin_secret)):
        if value and estimated_bits(value) < MIN_VARIETY_BITS:
            problems.append(
                Problem(
                    "phoenix_apikeys.W003",
                    variable,
                    gettext(
                        "%(variable)s has little variety (under %(bits)d estimated bits from its "
                        "character frequencies)."
                    )
                    % {"variable": variable, "bits": MIN_VARIETY_BITS},
                    _generate(),
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
