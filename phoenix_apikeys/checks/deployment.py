"""The deployment: keys within the lifetime policy, caches, the system user, rotation grace
and migrated tables."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import InvalidCacheBackendError, caches
from django.core.checks import CheckMessage, Error, Tags, Warning
from django.db import DatabaseError, connections, router
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from ..cache import is_per_process
from ..conf import DEFAULTS, phoenix_settings, read_secrets, rule_context
from ..models import KEY_MODELS, SystemKey, SystemUser
from ..rules import deploy_problems
from .base import check


@check(Tags.database, Tags.security, deploy=True)
def check_keys_within_lifetime(**kwargs: Any) -> list[CheckMessage]:
    """W006: keys made before MAX_KEY_LIFETIME was tightened outlive it (they keep working until
    they expire). It reads the database: ``check --deploy --database default``."""
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
                    ngettext(
                        "%(count)d %(kind)s key outlives MAX_KEY_LIFETIME (never expiring, or "
                        "expiring later than it allows).",
                        "%(count)d %(kind)s keys outlive MAX_KEY_LIFETIME (never expiring, or "
                        "expiring later than it allows).",
                        count,
                    )
                    % {"count": count, "kind": kind.value},
                    hint=gettext(
                        "They keep working until they expire: list them with "
                        "`manage.py list_api_keys --kind %(kind)s` and rotate or revoke them."
                    )
                    % {"kind": kind.value},
                    id="phoenix_apikeys.W006",
                )
            )
    return warnings


@check(Tags.security, deploy=True)
def check_deployment(**kwargs: Any) -> list[CheckMessage]:
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
                    gettext("PHOENIX_ADMIN_SECRET is still set although a system API key exists."),
                    hint=gettext("Provision with the system key and remove PHOENIX_ADMIN_SECRET."),
                    id="phoenix_apikeys.W001",
                )
            )
    return warnings


@check(Tags.caches, Tags.security)
def check_cache(**kwargs: Any) -> list[CheckMessage]:
    user_settings = phoenix_settings.given()
    alias = user_settings.get("CACHE_ALIAS")
    messages = _unknown_cache_aliases(user_settings)
    try:
        per_process = is_per_process(caches[alias]) if alias else False
    except InvalidCacheBackendError:
        per_process = False
    if per_process:
        messages.append(
            Error(
                gettext(
                    "PHOENIX_APIKEYS['CACHE_ALIAS'] = %(alias)s is a per-process (local-memory) "
                    "cache: a key revoked by another process (a worker, a command, another host) "
                    "would keep working here until its entry times out."
                )
                % {"alias": repr(alias)},
                hint=gettext(
                    "Point CACHE_ALIAS at a cache every process shares (Redis, e.g. "
                    "django-redis), or set it to None; until then keys are verified in the "
                    "database."
                ),
                id="phoenix_apikeys.E024",
            )
        )
    throttle_alias = user_settings.get("THROTTLE_CACHE_ALIAS", DEFAULTS["THROTTLE_CACHE_ALIAS"])
    for name in sorted({alias, throttle_alias} - {None}, key=str):
        if _redis_without_timeout(getattr(settings, "CACHES", {}).get(name)):
            messages.append(
                Warning(
                    gettext(
                        "Cache %(name)s (used by phoenix_apikeys) is Redis without a socket "
                        "timeout: a frozen Redis would hold every authenticated request for "
                        "seconds."
                    )
                    % {"name": repr(name)},
                    hint=gettext(
                        "Set OPTIONS SOCKET_CONNECT_TIMEOUT and SOCKET_TIMEOUT (django-redis) "
                        "or socket_connect_timeout and socket_timeout (Django's RedisCache) to a "
                        "few tens of milliseconds, e.g. 0.05."
                    ),
                    id="phoenix_apikeys.W004",
                )
            )
    return messages


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
            (
                gettext(
                    "PHOENIX_APIKEYS[%(name)s] = %(alias)s names no cache in CACHES, so it is "
                    "not used: keys are verified in the database."
                )
                if name == "CACHE_ALIAS"
                else gettext(
                    "PHOENIX_APIKEYS[%(name)s] = %(alias)s names no cache in CACHES, so it is "
                    "not used: failed attempts are not throttled."
                )
            )
            % {"name": repr(name), "alias": repr(alias)},
            hint=gettext(
                "Set %(name)s to one of CACHES' aliases (%(aliases)s) or to None, or add a cache "
                "of that name to CACHES."
            )
            % {"name": name, "aliases": ", ".join(map(repr, configured))},
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


@check(Tags.database, Tags.security)
def check_system_user(**kwargs: Any) -> list[CheckMessage]:
    """The user system keys and the admin secret act as must stay a powerless, named account.

    It reads the database, so like Django's own database checks it runs only when asked to
    (``check --database default``, and ``migrate``).
    """
    using = router.db_for_read(SystemUser)
    if using not in (kwargs.get("databases") or ()):
        return []
    try:
        binding = SystemUser.objects.using(using).select_related("user").first()
    except DatabaseError:  # not migrated yet
        return []
    return [] if binding is None else _system_user_errors(binding.user)


def _system_user_errors(user: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        errors.append(
            Error(
                gettext("The system user (pk %(pk)s) is staff or superuser.") % {"pk": user.pk},
                hint=gettext(
                    "System keys and the admin secret act as this user: remove is_staff and "
                    "is_superuser from it."
                ),
                id="phoenix_apikeys.E031",
            )
        )
    if user.has_usable_password():
        errors.append(
            Error(
                gettext("The system user (pk %(pk)s) has a usable password.") % {"pk": user.pk},
                hint=gettext("Nobody may log in as it: call set_unusable_password() and save it."),
                id="phoenix_apikeys.E032",
            )
        )
    if user.get_username() != phoenix_settings.SYSTEM_USERNAME:
        errors.append(
            Error(
                gettext(
                    "The system user (pk %(pk)s) is named %(name)s, not %(expected)s "
                    "(SYSTEM_USERNAME)."
                )
                % {
                    "pk": user.pk,
                    "name": repr(user.get_username()),
                    "expected": repr(phoenix_settings.SYSTEM_USERNAME),
                },
                hint=gettext(
                    "Rename it back, or set PHOENIX_APIKEYS['SYSTEM_USERNAME'] to its name; "
                    "system keys act as this user whatever it is called."
                ),
                id="phoenix_apikeys.E033",
            )
        )
    return errors


@check(Tags.database)
def check_tables_migrated(**kwargs: Any) -> list[CheckMessage]:
    """W022: without our tables every key request is a 503; reads the database, so it runs
    only when asked (``check --database default``), as Django's own database checks do.
    ``migrate`` asks too, before it migrates: then it says nothing."""
    databases = kwargs.get("databases") or ()
    if sys.argv[1:2] == ["migrate"]:  # it checks before it migrates: it is what we would ask
        return []
    missing: dict[str, list[str]] = {}
    tables: dict[str, set[str]] = {}
    for model in apps.get_app_config("phoenix_apikeys").get_models():
        using = router.db_for_write(model)
        if using not in databases:
            continue
        if using not in tables:
            try:
                tables[using] = set(connections[using].introspection.table_names())
            except DatabaseError:  # unreachable: not this check's business
                return []
        if model._meta.db_table not in tables[using]:
            missing.setdefault(using, []).append(model._meta.db_table)
    return [
        Warning(
            gettext(
                "Database %(database)s has no table %(tables)s: every request with an API key "
                "would be answered 503."
            )
            % {"database": repr(using), "tables": ", ".join(names)},
            hint=gettext("Run `manage.py migrate --database %(database)s`.") % {"database": using},
            id="phoenix_apikeys.W022",
        )
        for using, names in missing.items()
    ]
