"""System checks: every broken secret rule fails check, runserver and migrate, all in one run."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from .conf import DEFAULTS, read_secrets, rule_context
from .keys import PREFIX_PATTERN
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
    messages: list[CheckMessage] = []
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
    for name in sorted({alias, throttle_alias} - {None}):
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


def _redis_without_timeout(config: Any) -> bool:
    if not isinstance(config, dict) or "redis" not in str(config.get("BACKEND", "")).lower():
        return False
    options = {str(name).lower() for name in (config.get("OPTIONS") or {})}
    return not {"socket_timeout", "socket_connect_timeout"} <= options


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
