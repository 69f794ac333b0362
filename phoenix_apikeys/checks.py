"""System checks: every broken secret rule fails check, runserver and migrate, all in one run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import Q
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from rest_framework.request import Request
from rest_framework.settings import api_settings

from .authentication import APIKeyAuthentication
from .conf import DEFAULTS, phoenix_settings, read_secrets, rule_context
from .http import SCHEME
from .keys import PREFIX_PATTERN, KeyKind
from .rules import admin_secret_problems, deploy_problems, secret_problems


@register(Tags.security)
def check_secrets(**kwargs: Any) -> list[CheckMessage]:
    """The rules the runtime guard enforces, from the same module and inputs, as errors."""
    secrets = read_secrets()
    problems = secret_problems(secrets.secret) + admin_secret_problems(
        secrets.admin_secret, secrets.secret, rule_context()
    )
    return [Error(str(problem), hint=problem.hint, id=problem.id) for problem in problems]


@register(Tags.security)
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    user_settings = getattr(settings, "PHOENIX_APIKEYS", None) or {}
    errors: list[CheckMessage] = [
        Error(
            f"PHOENIX_APIKEYS has an unknown setting {name!r}.",
            hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
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
                    f"PHOENIX_APIKEYS[{name!r}] = {prefix!r} is not a valid key prefix.",
                    hint="Use 1-31 lowercase letters, digits, '_' or '-', ending in '_'.",
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
                f"Key prefixes {system!r} and {user!r} overlap; the kind of a key would be "
                "ambiguous.",
                hint="Give system and user keys distinct prefixes, neither starting the other.",
                id="phoenix_apikeys.E023",
            )
        )
    return errors


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: Any) -> float | None:
    """A duration setting in seconds (a timedelta or a number), None for anything else."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if _number(value) else None


def _between(low: float, high: float) -> Any:
    return lambda value: (seconds := _seconds(value)) is not None and low <= seconds <= high


def _optional(rule: Any) -> Any:
    return lambda value: value is None or rule(value)


def _count(low: int) -> Any:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= low


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
LIFETIME = (
    'None, or a timedelta or seconds from 1 second to 100 years; or {"system": ..., "user": ...} '
    "with such values"
)
# What each setting must be; a wrong type or range would otherwise surface as 500s on requests.
VALUE_RULES: dict[str, tuple[Any, str]] = {
    "AUTH_HEADER_KEYWORD": (_scheme, 'an HTTP authentication scheme word, such as "Bearer"'),
    "SYSTEM_USERNAME": (_text, "a non-empty username"),
    "LAST_USED_INTERVAL": (_between(0, CENTURY), "a timedelta or seconds, 0 or more"),
    "MAX_KEY_LIFETIME": (_per_kind(_optional(_between(1, CENTURY))), LIFETIME),
    "DEFAULT_KEY_LIFETIME": (_per_kind(_optional(_between(1, CENTURY))), LIFETIME),
    "CACHE_ALIAS": (_optional(_text), "None or the name of an alias in CACHES"),
    "CACHE_TIMEOUT": (_count(1), "a whole number of seconds, 1 or more"),
    "LOCAL_CACHE": (lambda value: isinstance(value, bool), "True or False"),
    "CACHE_RETRY_INTERVAL": (_between(0, 86400), "seconds, from 0 to 86400"),
    "THROTTLE_CACHE_ALIAS": (_optional(_text), "None or the name of an alias in CACHES"),
    "FAILED_AUTH_LIMIT": (_optional(_count(1)), "None, or a whole number, 1 or more"),
    "FAILED_AUTH_WINDOW": (_count(1), "a whole number of seconds, 1 or more"),
    "LEAK_REVOCATION_LIMIT": (_optional(_count(1)), "None, or a whole number, 1 or more"),
    "CLIENT_ADDRESS_HEADER": (_optional(_text), "None or a request.META key"),
    "TRUSTED_PROXY_COUNT": (_count(1), "a whole number, 1 or more"),
    "ROTATION_GRACE_PERIOD": (_between(0, CENTURY), "a timedelta or seconds, 0 or more"),
    "MAX_ROTATION_GRACE_PERIOD": (_between(0, CENTURY), "a timedelta or seconds, 0 or more"),
    "EXPIRY_NOTICE_THRESHOLDS": (
        _each(_between(0, CENTURY)),
        "a list of timedeltas or seconds, each 0 or more (empty: no notices)",
    ),
    "EVENT_RETENTION": (_between(1, CENTURY), "a timedelta or seconds, 1 second or more"),
    "MAX_KEYS_PER_USER": (_optional(_count(1)), "None, or a whole number, 1 or more"),
    "MAX_SYSTEM_KEYS": (_optional(_count(1)), "None, or a whole number, 1 or more"),
}


@register(Tags.security)
def check_setting_values(**kwargs: Any) -> list[CheckMessage]:
    """E026: a setting of the wrong type or range; E027: USE_TZ off (expiries are aware)."""
    user_settings = getattr(settings, "PHOENIX_APIKEYS", None) or {}
    errors: list[CheckMessage] = [
        Error(
            f"PHOENIX_APIKEYS[{name!r}] = {user_settings[name]!r} is not valid.",
            hint=f"It must be {expected}.",
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
                "USE_TZ is False: key expiries are aware times, so keys with an expiry could "
                "be neither made nor checked.",
                hint="Set USE_TZ = True (Django's default since 5.0).",
                id="phoenix_apikeys.E027",
            )
        )
    return errors


def _default_beyond_maximum() -> list[CheckMessage]:
    """E028: a default lifetime longer than the maximum would make every default key fail."""
    from .conf import phoenix_settings

    errors: list[CheckMessage] = []
    for kind in KeyKind:
        policy = phoenix_settings.lifetime_policy(kind)
        if policy.default and policy.maximum and policy.default > policy.maximum:
            errors.append(
                Error(
                    f"DEFAULT_KEY_LIFETIME for {kind.value} keys is longer than their "
                    "MAX_KEY_LIFETIME: every key made without an expiry would be refused.",
                    hint="Make the default no longer than the maximum.",
                    id="phoenix_apikeys.E028",
                )
            )
    return errors


@register(Tags.database, Tags.security, deploy=True)
def check_keys_within_lifetime(**kwargs: Any) -> list[CheckMessage]:
    """W006: keys made before MAX_KEY_LIFETIME was tightened outlive it (they keep working until
    they expire). It reads the database: ``check --deploy --database default``."""
    from django.db import router
    from django.utils import timezone

    from .conf import phoenix_settings
    from .models import KEY_MODELS

    warnings: list[CheckMessage] = []
    now = timezone.now()
    for kind, model in KEY_MODELS.items():
        maximum = phoenix_settings.lifetime_policy(kind).maximum
        using = router.db_for_read(model)
        if not isinstance(maximum, timedelta) or using not in (kwargs.get("databases") or ()):
            continue  # no maximum, or not a duration (E026 says so)
        if maximum <= timedelta(0):
            continue
        beyond = Q(expires_at__isnull=True) | Q(expires_at__gt=now + maximum)
        try:
            count = model._default_manager.using(using).filter(beyond).count()
        except DatabaseError:  # not migrated yet
            continue
        if count:
            warnings.append(
                Warning(
                    f"{count} {kind.value} key{'s' * (count != 1)} "
                    f"outlive{'s' * (count == 1)} MAX_KEY_LIFETIME (never expiring, or expiring "
                    "later than it allows).",
                    hint="They keep working until they expire: list them with "
                    f"`manage.py list_api_keys --kind {kind.value}` and rotate or revoke them.",
                    id="phoenix_apikeys.W006",
                )
            )
    return warnings


@register(Tags.security, deploy=True)
def check_deployment(**kwargs: Any) -> list[CheckMessage]:
    from .models import SystemKey

    secrets = read_secrets()
    warnings: list[CheckMessage] = [
        Warning(str(problem), hint=problem.hint, id=problem.id)
        for problem in deploy_problems(secrets.secret, secrets.admin_secret, rule_context())
    ]
    if secrets.admin_secret:
        try:
            has_system_key = SystemKey.objects.exists()
        except DatabaseError:  # not migrated yet: nothing to warn about
            has_system_key = False
        if has_system_key:
            warnings.append(
                Warning(
                    "PHOENIX_ADMIN_SECRET is still set although a system API key exists.",
                    hint="Provision with the system key and remove PHOENIX_ADMIN_SECRET.",
                    id="phoenix_apikeys.W001",
                )
            )
    return warnings


@register(Tags.caches, Tags.security)
def check_cache(**kwargs: Any) -> list[CheckMessage]:
    from django.core.cache import InvalidCacheBackendError, caches

    from .cache import is_per_process

    user_settings = getattr(settings, "PHOENIX_APIKEYS", None) or {}
    alias = user_settings.get("CACHE_ALIAS")
    messages = _unknown_cache_aliases(user_settings)
    try:
        per_process = is_per_process(caches[alias]) if alias else False
    except InvalidCacheBackendError:
        per_process = False
    if per_process:
        messages.append(
            Error(
                f"PHOENIX_APIKEYS['CACHE_ALIAS'] = {alias!r} is a per-process (local-memory) "
                "cache: a key revoked by another process (a worker, a command, another host) "
                "would keep working here until its entry times out.",
                hint="Point CACHE_ALIAS at a cache every process shares (Redis, e.g. "
                "django-redis), or set it to None; until then keys are verified in the database.",
                id="phoenix_apikeys.E024",
            )
        )
    throttle_alias = user_settings.get("THROTTLE_CACHE_ALIAS", DEFAULTS["THROTTLE_CACHE_ALIAS"])
    for name in sorted({alias, throttle_alias} - {None}, key=str):
        if _redis_without_timeout(getattr(settings, "CACHES", {}).get(name)):
            messages.append(
                Warning(
                    f"Cache {name!r} (used by phoenix_apikeys) is Redis without a socket timeout: "
                    "a frozen Redis would hold every authenticated request for seconds.",
                    hint="Set OPTIONS SOCKET_CONNECT_TIMEOUT and SOCKET_TIMEOUT (django-redis) "
                    "or socket_connect_timeout and socket_timeout (Django's RedisCache) to a few "
                    "tens of milliseconds, e.g. 0.05.",
                    id="phoenix_apikeys.W004",
                )
            )
    return messages


UNUSED = {
    "CACHE_ALIAS": "keys are verified in the database every time",
    "THROTTLE_CACHE_ALIAS": "failed attempts are not throttled",
}


def _unknown_cache_aliases(user_settings: dict[str, Any]) -> list[CheckMessage]:
    """E025: an alias missing from CACHES is no cache at all: the key cache or the throttle is
    silently off (one logged error at run time)."""
    used = [("CACHE_ALIAS", user_settings.get("CACHE_ALIAS"))]
    limit = user_settings.get("FAILED_AUTH_LIMIT", DEFAULTS["FAILED_AUTH_LIMIT"])
    if limit:  # without a limit the throttle never touches its cache
        throttle = user_settings.get("THROTTLE_CACHE_ALIAS", DEFAULTS["THROTTLE_CACHE_ALIAS"])
        used.append(("THROTTLE_CACHE_ALIAS", throttle))
    configured = getattr(settings, "CACHES", None) or {}
    return [
        Error(
            f"PHOENIX_APIKEYS[{name!r}] = {alias!r} names no cache in CACHES, so it is not "
            "used: "
            + (
                "keys are verified in the database"
                if name == "CACHE_ALIAS"
                else "failed attempts are not throttled"
            )
            + ".",
            hint=f"Set {name} to one of CACHES' aliases ({', '.join(map(repr, configured))}) "
            "or to None, or add a cache of that name to CACHES.",
            id="phoenix_apikeys.E025",
        )
        for name, alias in used
        if alias and not (isinstance(alias, str) and alias in configured)  # falsy: off
    ]


def _redis_without_timeout(config: Any) -> bool:
    if not isinstance(config, dict) or "redis" not in str(config.get("BACKEND", "")).lower():
        return False
    options = {str(name).lower() for name in (config.get("OPTIONS") or {})}
    return not {"socket_timeout", "socket_connect_timeout"} <= options


# Wiring into DRF and the middleware stack ------------------------------------------------------

AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
KEY_MIDDLEWARE = "phoenix_apikeys.middleware.APIKeyMiddleware"
KEY_AUTHENTICATION = "phoenix_apikeys.authentication.APIKeyAuthentication"


@register(Tags.templates)
def check_rest_framework_installed(**kwargs: Any) -> list[CheckMessage]:
    """E041: DRF's HTML renderers load their templates through INSTALLED_APPS, so without the
    app every response they render (any DRF view a browser opens) is a 500. JSON-only renderers
    need no template, and then DRF works as a plain library."""
    from django.apps import apps

    if apps.is_installed("rest_framework") or not _drf_is_used():
        return []
    renderers = [
        r.__name__ for r in _drf_classes("DEFAULT_RENDERER_CLASSES") if _renders_drf_html(r)
    ]
    if not renderers:
        return []
    return [
        Error(
            "'rest_framework' is not in INSTALLED_APPS, but REST_FRAMEWORK's "
            f"DEFAULT_RENDERER_CLASSES has {', '.join(renderers)}, rendering DRF's templates: "
            "every API response a browser asks for would be a server error "
            "(TemplateDoesNotExist).",
            hint="Add 'rest_framework' to INSTALLED_APPS (or set REST_FRAMEWORK"
            "['DEFAULT_RENDERER_CLASSES'] to JSON renderers only).",
            id="phoenix_apikeys.E041",
        )
    ]


def _drf_is_used() -> bool:
    """APIKeyAuthentication is a default authentication class, or the REST API is mounted."""
    if any(issubclass(cls, APIKeyAuthentication) for cls in _authentication_classes()):
        return True
    if not getattr(settings, "ROOT_URLCONF", None):
        return False
    try:
        reverse("phoenix_apikeys:current-user")
    except (NoReverseMatch, ImportError, ImproperlyConfigured):
        return False  # not mounted, or a URLconf that Django's own URL checks report
    return True


def _renders_drf_html(renderer: type) -> bool:
    names = (getattr(renderer, "template", None), getattr(renderer, "template_pack", None))
    return any(isinstance(name, str) and name.startswith("rest_framework/") for name in names)


def _authentication_classes() -> list[type]:
    return _drf_classes("DEFAULT_AUTHENTICATION_CLASSES")


def _drf_classes(name: str) -> list[type]:
    """A REST_FRAMEWORK list of classes, imported (its stubs type the setting as paths)."""
    try:
        return list(getattr(api_settings, name))
    except ImportError:  # DRF names the path that does not import on the first request
        return []


@register(Tags.security)
def check_authentication_order(**kwargs: Any) -> list[CheckMessage]:
    """W005: DRF answers a failed authentication with the first class's challenge; when that
    class sends none (SessionAuthentication) or another scheme, a bad key gets 403 or a 401 the
    client cannot act on, not 401 with ``WWW-Authenticate: Bearer``."""
    classes = _authentication_classes()
    ours = [i for i, cls in enumerate(classes) if issubclass(cls, APIKeyAuthentication)]
    if not ours or ours[0] == 0:
        return []
    first = classes[0]
    keyword = str(phoenix_settings.AUTH_HEADER_KEYWORD)
    scheme = _challenge_scheme(first)
    if scheme == keyword.lower():
        return []
    answer = "403 without WWW-Authenticate" if scheme is None else f"401 challenging {scheme!r}"
    return [
        Warning(
            f"REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'] lists {first.__name__} before "
            f"APIKeyAuthentication: DRF takes WWW-Authenticate from the first class, so a bad key "
            f"gets {answer} instead of 401 with 'WWW-Authenticate: {keyword}'. With "
            "APIKeyMiddleware on, a session class listed first also claims requests the "
            "middleware authenticated by key: request.auth is then None in your views "
            "(phoenix_apikeys.permissions still sees the key, through credential_of(request)).",
            hint=f"Put APIKeyAuthentication first: move {KEY_AUTHENTICATION!r} to the top of "
            "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'].",
            id="phoenix_apikeys.W005",
        )
    ]


def _challenge_scheme(cls: type) -> str | None:
    """The lower-cased scheme of the challenge ``cls`` sends, asked as DRF asks it."""
    try:
        header = cls().authenticate_header(Request(HttpRequest()))
    except Exception:  # a class that needs more than an empty request: its scheme is unknown
        return None
    return header.split(None, 1)[0].lower() if isinstance(header, str) and header.strip() else None


@register(Tags.security)
def check_middleware_order(**kwargs: Any) -> list[CheckMessage]:
    """E042: AuthenticationMiddleware sets request.user to the session's lazy user whatever was
    there, so after APIKeyMiddleware it would hide the key's user from every plain view."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    ours = _position(middleware, KEY_MIDDLEWARE)
    django_auth = _position(middleware, AUTHENTICATION_MIDDLEWARE)
    if ours is None or django_auth is None or ours > django_auth:
        return []
    return [
        Error(
            f"{middleware[ours]!r} comes before {middleware[django_auth]!r} in MIDDLEWARE: "
            "AuthenticationMiddleware then replaces the key's user with the session's, so plain "
            "Django views see an anonymous (or another, logged-in) user instead of the key's.",
            hint=f"Move {KEY_MIDDLEWARE!r} below {AUTHENTICATION_MIDDLEWARE!r} in MIDDLEWARE.",
            id="phoenix_apikeys.E042",
        )
    ]


def _position(middleware: list[Any], dotted: str) -> int | None:
    """Index of the first entry that is ``dotted`` or a subclass of it."""
    for index, path in enumerate(middleware):
        try:
            found = import_string(path) if isinstance(path, str) else None
        except ImportError:
            continue  # Django names a middleware that does not import when it loads it
        for cls in getattr(found, "__mro__", ()):
            if f"{cls.__module__}.{cls.__qualname__}" == dotted:
                return index
    return None


@register(Tags.database, Tags.security)
def check_system_user(**kwargs: Any) -> list[CheckMessage]:
    """The user system keys and the admin secret act as must stay a powerless, named account.

    It reads the database, so like Django's own database checks it runs only when asked to
    (``check --database default``, and ``migrate``).
    """
    from django.db import router

    from .conf import phoenix_settings
    from .models import SystemUser

    using = router.db_for_read(SystemUser)
    if using not in (kwargs.get("databases") or ()):
        return []
    try:
        binding = SystemUser.objects.using(using).select_related("user").first()
    except DatabaseError:  # not migrated yet
        return []
    if binding is None:
        return []
    user = binding.user
    errors: list[CheckMessage] = []
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        errors.append(
            Error(
                f"The system user (pk {user.pk}) is staff or superuser.",
                hint="System keys and the admin secret act as this user: remove is_staff and "
                "is_superuser from it.",
                id="phoenix_apikeys.E031",
            )
        )
    if user.has_usable_password():
        errors.append(
            Error(
                f"The system user (pk {user.pk}) has a usable password.",
                hint="Nobody may log in as it: call set_unusable_password() and save it.",
                id="phoenix_apikeys.E032",
            )
        )
    if user.get_username() != phoenix_settings.SYSTEM_USERNAME:
        errors.append(
            Error(
                f"The system user (pk {user.pk}) is named {user.get_username()!r}, not "
                f"{phoenix_settings.SYSTEM_USERNAME!r} (SYSTEM_USERNAME).",
                hint="Rename it back, or set PHOENIX_APIKEYS['SYSTEM_USERNAME'] to its name; "
                "system keys act as this user whatever it is called.",
                id="phoenix_apikeys.E033",
            )
        )
    return errors


@register(Tags.security)
def check_rotation_grace(**kwargs: Any) -> list[CheckMessage]:
    """E029: a default grace period longer than the longest allowed would refuse every rotation
    that names none (the admin action's among them). E030: audit events kept for less than the
    longest grace period."""
    user_settings = getattr(settings, "PHOENIX_APIKEYS", None) or {}
    values = [
        user_settings.get(name, DEFAULTS[name])
        for name in ("ROTATION_GRACE_PERIOD", "MAX_ROTATION_GRACE_PERIOD")
    ]
    if not all(VALUE_RULES["ROTATION_GRACE_PERIOD"][0](value) for value in values):
        return []  # a wrong type or range is E026's
    default, longest = (_seconds(value) or 0.0 for value in values)
    errors: list[CheckMessage] = []
    if default > longest:
        errors.append(
            Error(
                "ROTATION_GRACE_PERIOD is longer than MAX_ROTATION_GRACE_PERIOD: every rotation "
                "without a grace period of its own would be refused.",
                hint="Make the default grace period no longer than the maximum.",
                id="phoenix_apikeys.E029",
            )
        )
    retention = user_settings.get("EVENT_RETENTION", DEFAULTS["EVENT_RETENTION"])
    if VALUE_RULES["EVENT_RETENTION"][0](retention) and (_seconds(retention) or 0.0) < longest:
        errors.append(
            Error(
                "EVENT_RETENTION is shorter than MAX_ROTATION_GRACE_PERIOD: prune_key_events "
                "would erase the record of rotations whose old key still works.",
                hint="Keep events at least as long as the longest grace period.",
                id="phoenix_apikeys.E030",
            )
        )
    return errors
