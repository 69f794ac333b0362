"""Settings for phoenix_apikeys: the PHOENIX_APIKEYS namespace and the three secrets.

Everything is read lazily and re-read when Django's ``setting_changed`` fires, so nothing is
captured at import time and ``override_settings`` works in tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

import environ
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation

from .keys import KeyKind, Prefixes, Secret
from .rules import RuleContext, admin_secret_problems, secret_problems

logger = logging.getLogger("phoenix_apikeys")

SECRET_SETTINGS = ("PHOENIX_SECRET", "PHOENIX_ADMIN_SECRET", "PHOENIX_SECRET_FALLBACKS")

DEFAULTS: dict[str, Any] = {
    # Prefixes let secret scanners spot leaked keys and tell the two kinds apart at a glance.
    "SYSTEM_KEY_PREFIX": "phxs_",
    "USER_KEY_PREFIX": "phxu_",
    # Username of the one Django user that system keys and the admin secret act as.
    "SYSTEM_USERNAME": "system",
    # The scheme word in "Authorization: <keyword> <credential>".
    "AUTH_HEADER_KEYWORD": "Bearer",
    # last_used_at is written at most once per key per interval, never on every request.
    "LAST_USED_INTERVAL": timedelta(minutes=5),
    # Longest lifetime a new key may be given; None means keys may never expire. A duration for
    # both kinds, or {"system": ..., "user": ...} for each its own.
    "MAX_KEY_LIFETIME": None,
    # The lifetime a new key gets when none is given; None: it never expires (allowed only while
    # MAX_KEY_LIFETIME is None). A duration, or {"system": ..., "user": ...}.
    "DEFAULT_KEY_LIFETIME": None,
    # A Django cache alias for verified keys; None turns the cache off.
    "CACHE_ALIAS": None,
    # With a Redis CACHE_ALIAS, each process also keeps verified keys in its own memory, kept
    # coherent through Redis pub/sub: a warm request then makes no network round trip.
    "LOCAL_CACHE": True,
    # Seconds a verified key may be served from the cache.
    "CACHE_TIMEOUT": 300,
    # After a cache error, seconds this process verifies in the database before trying the cache
    # again: an outage costs one failed call per interval, not one per request.
    "CACHE_RETRY_INTERVAL": 5,
    # Failed authentications counted per client address in this cache (None: no throttling);
    # past FAILED_AUTH_LIMIT within FAILED_AUTH_WINDOW seconds the address gets 429.
    "THROTTLE_CACHE_ALIAS": "default",
    "FAILED_AUTH_LIMIT": 30,
    "FAILED_AUTH_WINDOW": 60,
    # Leak reports (POST v1/api_keys/revoke, no credential) accepted per client address per
    # FAILED_AUTH_WINDOW, counted in THROTTLE_CACHE_ALIAS; past it 429. None: no limit.
    "LEAK_REVOCATION_LIMIT": 10,
    # Behind a proxy: the META key of the header carrying client addresses (for example
    # "HTTP_X_FORWARDED_FOR") and how many proxies you run that append to it. None: REMOTE_ADDR.
    "CLIENT_ADDRESS_HEADER": None,
    "TRUSTED_PROXY_COUNT": 1,
    # Rotation: how long a replaced key keeps working when the caller names no grace period,
    # and the longest grace period a caller may ask for.
    "ROTATION_GRACE_PERIOD": timedelta(hours=24),
    "MAX_ROTATION_GRACE_PERIOD": timedelta(days=30),
    # `manage.py notify_expiring_keys` emails about a key once per threshold it crosses: how
    # long before its expiry (timedeltas or seconds; 0: "has expired"; empty: no notices).
    "EXPIRY_NOTICE_THRESHOLDS": (timedelta(days=7), timedelta(days=1), timedelta(0)),
    # Live (unexpired) keys allowed per user, and system keys in all; None: no limit.
    "MAX_KEYS_PER_USER": 100,
    "MAX_SYSTEM_KEYS": 100,
    # `manage.py prune_key_events` deletes audit events older than this (at least as long as
    # MAX_ROTATION_GRACE_PERIOD: check E030).
    "EVENT_RETENTION": timedelta(days=365),
}
# Settings that take a timedelta or a number of seconds.
DURATIONS = frozenset(
    {
        "LAST_USED_INTERVAL",
        "MAX_KEY_LIFETIME",
        "DEFAULT_KEY_LIFETIME",
        "ROTATION_GRACE_PERIOD",
        "MAX_ROTATION_GRACE_PERIOD",
        "EVENT_RETENTION",
    }
)


def _duration(value: Any) -> Any:
    if _is_number(value):
        return timedelta(seconds=value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds(value: Any) -> float | None:
    """A duration setting in seconds (a timedelta or a number of seconds); None for anything
    else."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if _is_number(value) else None


@dataclass(frozen=True)
class LifetimePolicy:
    """How long keys of one kind may live: the default a new key gets, and the most it may."""

    default: timedelta | None
    maximum: timedelta | None

    @property
    def may_never_expire(self) -> bool:
        return self.default is None and self.maximum is None


@dataclass(frozen=True)
class Secrets:
    # Never in a repr: a debug page or traceback showing a Secrets shows no secret.
    secret: str | None = field(repr=False)
    admin_secret: str | None = field(repr=False)
    fallbacks: tuple[str, ...] = field(repr=False)


class PhoenixSettings:
    """Attribute access to PHOENIX_APIKEYS with defaults; secrets from settings, else env.

    Each value is worked out on first use and then kept as a plain attribute, so a read on the
    request path costs an attribute lookup; ``reload()`` forgets them all.
    """

    @staticmethod
    def given() -> dict[str, Any]:
        """PHOENIX_APIKEYS as the project wrote it (what the checks judge), never None."""
        return getattr(settings, "PHOENIX_APIKEYS", None) or {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown phoenix_apikeys setting: {name!r}")
        value = self.given().get(name, DEFAULTS[name])
        if name in DURATIONS:
            per_kind = isinstance(value, dict)
            value = {k: _duration(v) for k, v in value.items()} if per_kind else _duration(value)
        self.__dict__[name] = value
        return value

    @cached_property
    def secrets(self) -> Secrets:
        """The secrets as the runtime may use them: any that breaks a rule is dropped."""
        return guard(read_secrets())

    def lifetime_policy(self, kind: KeyKind) -> LifetimePolicy:
        """MAX_KEY_LIFETIME and DEFAULT_KEY_LIFETIME as they apply to ``kind``."""

        def for_kind(name: str) -> timedelta | None:
            value = getattr(self, name)
            chosen: timedelta | None = value.get(kind.value) if isinstance(value, dict) else value
            return chosen

        return LifetimePolicy(
            default=for_kind("DEFAULT_KEY_LIFETIME"), maximum=for_kind("MAX_KEY_LIFETIME")
        )

    @cached_property
    def prefixes(self) -> Prefixes:
        return Prefixes(system=str(self.SYSTEM_KEY_PREFIX), user=str(self.USER_KEY_PREFIX))

    @cached_property
    def verification_secrets(self) -> tuple[str, ...]:
        """Current secret first, then the fallbacks still accepted during a rotation."""
        secrets = self.secrets
        if secrets.secret is None:
            return ()
        return (secrets.secret, *secrets.fallbacks)

    def reload(self) -> None:
        self.__dict__.clear()


def read_secrets() -> Secrets:
    """Django settings win; the environment (with django-environ's .env) is the fallback.

    Read raw from django-environ's ENVIRON: its get_value() would treat a value starting with
    "$" as the name of another variable, and a secret is never that.
    """

    def get(name: str) -> Any:
        if hasattr(settings, name):
            return getattr(settings, name)
        return environ.Env.ENVIRON.get(name) or None

    if hasattr(settings, "PHOENIX_SECRET_FALLBACKS"):
        fallbacks = settings.PHOENIX_SECRET_FALLBACKS or ()
        if isinstance(fallbacks, str):
            fallbacks = [fallbacks]
    else:  # comma-separated in the environment
        fallbacks = (get("PHOENIX_SECRET_FALLBACKS") or "").split(",")
    return Secrets(
        secret=_secret(get("PHOENIX_SECRET")),
        admin_secret=_secret(get("PHOENIX_ADMIN_SECRET")),
        fallbacks=tuple(Secret(fallback) for fallback in fallbacks if fallback),
    )


def _secret(value: Any) -> Secret | None:
    return Secret(value) if value else None


def guard(secrets: Secrets) -> Secrets:
    """Fail closed where checks cannot reach (WSGI/ASGI): refuse a secret that breaks a rule.

    The same rules and inputs as ``manage.py check`` (``rule_context``), so a value the
    check passes is never refused here and a value it fails is never used. Logs name the rule,
    never the value.
    """
    secret, admin_secret = secrets.secret, secrets.admin_secret
    with translation.override(None):  # log lines stay in English, whoever asked first
        secret_broken = secret_problems(secret)
        admin_broken = admin_secret_problems(admin_secret, secret, rule_context())
    for problem in secret_broken:
        logger.error("API keys are refused: %s (%s) Run `manage.py check`.", problem, problem.id)
    for problem in admin_broken:
        logger.error("PHOENIX_ADMIN_SECRET is refused: %s (%s)", problem, problem.id)
    return Secrets(
        secret=None if secret_broken else secret,
        admin_secret=None if admin_broken or secret_broken else admin_secret,
        fallbacks=secrets.fallbacks,
    )


phoenix_settings = PhoenixSettings()


def rule_context() -> RuleContext:
    """Read from the live settings, so the check and the runtime guard compare the same values."""
    prefixes = (phoenix_settings.SYSTEM_KEY_PREFIX, phoenix_settings.USER_KEY_PREFIX)
    key_fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", None) or ()
    return RuleContext(
        secret_key=_django_secret_key(),
        key_prefixes=tuple(prefix for prefix in prefixes if isinstance(prefix, str)),
        secret_key_fallbacks=tuple(str(value) for value in key_fallbacks if value),
        secret_fallbacks=read_secrets().fallbacks,
    )


def _django_secret_key() -> str | None:
    """SECRET_KEY, or None when unset: Django raises rather than return an empty one."""
    try:
        value = settings.SECRET_KEY
    except (AttributeError, ImproperlyConfigured):
        return None
    return value if isinstance(value, str) and value else None


@receiver(setting_changed)
def _reload_settings(*, setting: str, **kwargs: Any) -> None:
    # SECRET_KEY too: the admin secret must differ from it.
    if setting in ("PHOENIX_APIKEYS", "SECRET_KEY") or setting in SECRET_SETTINGS:
        phoenix_settings.reload()
