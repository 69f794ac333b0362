"""The settings: secrets, names and values, each rule as ``manage.py check`` reports it."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import environ
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import DEFAULTS, SECRET_SETTINGS, phoenix_settings, read_secrets, rule_context, seconds
from ..http import SCHEME
from ..keys import PREFIX_PATTERN, KeyKind
from ..rules import admin_secret_problems, secret_problems
from .base import check

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@check(Tags.security)
def check_secrets(**kwargs: Any) -> list[CheckMessage]:
    """The rules the runtime guard enforces, from the same module and inputs, as errors."""
    secrets = read_secrets()
    problems = secret_problems(secrets.secret) + admin_secret_problems(
        secrets.admin_secret, secrets.secret, rule_context()
    )
    return [Error(str(problem), hint=problem.hint, id=problem.id) for problem in problems]


@check(Tags.security)
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    user_settings = phoenix_settings.given()
    errors: list[CheckMessage] = [
        Error(
            gettext("PHOENIX_APIKEYS has an unknown setting %(name)s.") % {"name": repr(name)},
            hint=gettext("Known settings: %(names)s.") % {"names": ", ".join(sorted(DEFAULTS))},
            id="phoenix_apikeys.E021",
        )
        for name in sorted(set(user_settings) - set(DEFAULTS))
    ]
    system = user_settings.get("SYSTEM_KEY_PREFIX", DEFAULTS["SYSTEM_KEY_PREFIX"])
    user = user_settings.get("USER_KEY_PREFIX", DEFAULTS["USER_KEY_PREFIX"])
    for name, prefix in (("SYSTEM_KEY_PREFIX", system), ("USER_KEY_PREFIX", user)):
        if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
            errors.append(
                Error(
                    gettext("PHOENIX_APIKEYS[%(name)s] = %(prefix)s is not a valid key prefix.")
                    % {"name": repr(name), "prefix": repr(prefix)},
                    hint=gettext("Use 1-31 lowercase letters, digits, '_' or '-', ending in '_'."),
                    id="phoenix_apikeys.E022",
                )
            )
    if (
        isinstance(system, str)
        and isinstance(user, str)
        and (system.startswith(user) or user.startswith(system))
    ):
        errors.append(
            Error(
                gettext(
                    "Key prefixes %(system)s and %(user)s overlap; the kind of a key would be "
                    "ambiguous."
                )
                % {"system": repr(system), "user": repr(user)},
                hint=gettext(
                    "Give system and user keys distinct prefixes, neither starting the other."
                ),
                id="phoenix_apikeys.E023",
            )
        )
    return errors


def _between(low: float, high: float) -> Any:
    return lambda value: (count := seconds(value)) is not None and low <= count <= high


def _optional(rule: Any) -> Any:
    return lambda value: value is None or rule(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _scheme(value: Any) -> bool:
    return isinstance(value, str) and SCHEME.fullmatch(value) is not None


def _each(rule: Any) -> Any:
    """A list or tuple (empty too) whose every item meets ``rule``."""
    return lambda value: isinstance(value, (list, tuple)) and all(map(rule, value))


def _per_kind(rule: Any) -> Any:
    """The rule for one value, or for each of {"system": ..., "user": ...}."""

    def valid(value: Any) -> bool:
        if isinstance(value, dict):
            return set(value) <= {"system", "user"} and all(map(rule, value.values()))
        return bool(rule(value))

    return valid


CENTURY = 100 * 365 * 86400
LIFETIME = _(
    'None, or a timedelta or seconds from 1 second to 100 years; or {"system": ..., "user": ...} '
    "with such values"
)
# What each setting must be; a wrong type or range would otherwise surface as 500s on requests.
VALUE_RULES: dict[str, tuple[Any, StrOrPromise]] = {
    "AUTH_HEADER_KEYWORD": (_scheme, _('an HTTP authentication scheme word, such as "Bearer"')),
    "SYSTEM_USERNAME": (_text, _("a non-empty username")),
    "LAST_USED_INTERVAL": (_between(0, CENTURY), _("a timedelta or seconds, 0 or more")),
    "MAX_KEY_LIFETIME": (_per_kind(_optional(_between(1, CENTURY))), LIFETIME),
    "DEFAULT_KEY_LIFETIME": (_per_kind(_optional(_between(1, CENTURY))), LIFETIME),
    "CACHE_ALIAS": (_optional(_text), _("None or the name of an alias in CACHES")),
    "CACHE_TIMEOUT": (_count, _("a whole number of seconds, 1 or more")),
    "LOCAL_CACHE": (lambda value: isinstance(value, bool), _("True or False")),
    "CACHE_RETRY_INTERVAL": (_between(0, 86400), _("seconds, from 0 to 86400")),
    "THROTTLE_CACHE_ALIAS": (_optional(_text), _("None or the name of an alias in CACHES")),
    "FAILED_AUTH_LIMIT": (_optional(_count), _("None, or a whole number, 1 or more")),
    "FAILED_AUTH_WINDOW": (_count, _("a whole number of seconds, 1 or more")),
    "LEAK_REVOCATION_LIMIT": (_optional(_count), _("None, or a whole number, 1 or more")),
    "CLIENT_ADDRESS_HEADER": (_optional(_text), _("None or a request.META key")),
    "TRUSTED_PROXY_COUNT": (_count, _("a whole number, 1 or more")),
    "ROTATION_GRACE_PERIOD": (_between(0, CENTURY), _("a timedelta or seconds, 0 or more")),
    "MAX_ROTATION_GRACE_PERIOD": (_between(0, CENTURY), _("a timedelta or seconds, 0 or more")),
    "EXPIRY_NOTICE_THRESHOLDS": (
        _each(_between(0, CENTURY)),
        _("a list of timedeltas or seconds, each 0 or more (empty: no notices)"),
    ),
    "EVENT_RETENTION": (_between(1, CENTURY), _("a timedelta or seconds, 1 second or more")),
    "MAX_KEYS_PER_USER": (_optional(_count), _("None, or a whole number, 1 or more")),
    "MAX_SYSTEM_KEYS": (_optional(_count), _("None, or a whole number, 1 or more")),
}


@check(Tags.security)
def check_setting_values(**kwargs: Any) -> list[CheckMessage]:
    """E026: a setting of the wrong type or range; E027: USE_TZ off (expiries are aware)."""
    user_settings = phoenix_settings.given()
    errors: list[CheckMessage] = [
        Error(
            gettext("PHOENIX_APIKEYS[%(name)s] = %(value)s is not valid.")
            % {"name": repr(name), "value": repr(user_settings[name])},
            hint=gettext("It must be %(expected)s.") % {"expected": expected},
            id="phoenix_apikeys.E026",
        )
        for name, (valid, expected) in VALUE_RULES.items()
        if name in user_settings and not valid(user_settings[name])
    ]
    if not errors:
        errors += _default_beyond_maximum()
    if not getattr(settings, "USE_TZ", True):
        errors.append(
            Error(
                gettext(
                    "USE_TZ is False: key expiries are aware times, so keys with an expiry could "
                    "be neither made nor checked."
                ),
                hint=gettext("Set USE_TZ = True (Django's default since 5.0)."),
                id="phoenix_apikeys.E027",
            )
        )
    return errors


def _default_beyond_maximum() -> list[CheckMessage]:
    """E028: a default lifetime longer than the maximum would make every default key fail."""
    errors: list[CheckMessage] = []
    for kind in KeyKind:
        policy = phoenix_settings.lifetime_policy(kind)
        if policy.default and policy.maximum and policy.default > policy.maximum:
            errors.append(
                Error(
                    gettext(
                        "DEFAULT_KEY_LIFETIME for %(kind)s keys is longer than their "
                        "MAX_KEY_LIFETIME: every key made without an expiry would be refused."
                    )
                    % {"kind": kind.value},
                    hint=gettext("Make the default no longer than the maximum."),
                    id="phoenix_apikeys.E028",
                )
            )
    return errors


KNOWN_SETTINGS = frozenset({"PHOENIX_APIKEYS", *SECRET_SETTINGS})


@check()
def check_unknown_settings(**kwargs: Any) -> list[CheckMessage]:
    """W020: a misspelled name (PHOENIX_APIKEY, PHOENIX_ADMIN_SECRETS) is otherwise silent."""
    names = sorted(
        name for name in dir(settings) if name.startswith("PHOENIX_") and name not in KNOWN_SETTINGS
    )
    warnings: list[CheckMessage] = []
    for name in names:
        close = difflib.get_close_matches(name, KNOWN_SETTINGS, n=1)
        if close:
            text = gettext(
                "Unknown setting %(name)s: phoenix_apikeys does not read it. Did you mean "
                "%(guess)s?"
            ) % {"name": name, "guess": close[0]}
        else:
            text = gettext("Unknown setting %(name)s: phoenix_apikeys does not read it.") % {
                "name": name
            }
        warnings.append(
            Warning(
                text,
                hint=gettext("phoenix_apikeys reads %(names)s.")
                % {"names": ", ".join(sorted(KNOWN_SETTINGS))},
                id="phoenix_apikeys.W020",
            )
        )
    return warnings


@check(Tags.security)
def check_secrets_hidden_by_settings(**kwargs: Any) -> list[CheckMessage]:
    """W021: a setting wins over the environment even when it is None or empty, so
    ``PHOENIX_SECRET = None`` hides a PHOENIX_SECRET exported in the environment."""
    return [
        Warning(
            gettext(
                "%(name)s is empty (None) in your settings, which hides the %(name)s set in the "
                "environment: phoenix_apikeys reads the setting whenever it exists."
            )
            % {"name": name},
            hint=gettext(
                "Delete %(name)s from your settings to use the environment's value, or set "
                "the value in your settings."
            )
            % {"name": name},
            id="phoenix_apikeys.W021",
        )
        for name in SECRET_SETTINGS
        if hasattr(settings, name) and not getattr(settings, name) and environ.Env.ENVIRON.get(name)
    ]


@check(Tags.security)
def check_rotation_grace(**kwargs: Any) -> list[CheckMessage]:
    """E029: a default grace period longer than the longest allowed would refuse every rotation
    that names none (the admin action's among them). E030: audit events kept for less than the
    longest grace period."""
    user_settings = phoenix_settings.given()
    values = [
        user_settings.get(name, DEFAULTS[name])
        for name in ("ROTATION_GRACE_PERIOD", "MAX_ROTATION_GRACE_PERIOD")
    ]
    if not all(VALUE_RULES["ROTATION_GRACE_PERIOD"][0](value) for value in values):
        return []  # a wrong type or range is E026's
    default, longest = (seconds(value) or 0.0 for value in values)
    errors: list[CheckMessage] = []
    if default > longest:
        errors.append(
            Error(
                gettext(
                    "ROTATION_GRACE_PERIOD is longer than MAX_ROTATION_GRACE_PERIOD: every "
                    "rotation without a grace period of its own would be refused."
                ),
                hint=gettext("Make the default grace period no longer than the maximum."),
                id="phoenix_apikeys.E029",
            )
        )
    retention = user_settings.get("EVENT_RETENTION", DEFAULTS["EVENT_RETENTION"])
    if VALUE_RULES["EVENT_RETENTION"][0](retention) and (seconds(retention) or 0.0) < longest:
        errors.append(
            Error(
                gettext(
                    "EVENT_RETENTION is shorter than MAX_ROTATION_GRACE_PERIOD: prune_key_events "
                    "would erase the record of rotations whose old key still works."
                ),
                hint=gettext("Keep events at least as long as the longest grace period."),
                id="phoenix_apikeys.E030",
            )
        )
    return errors
