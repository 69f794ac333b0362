"""System checks: every broken secret rule fails check, runserver and migrate, all in one run."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from .conf import DEFAULTS, read_secrets
from .keys import PREFIX_PATTERN
from .rules import admin_secret_problems, secret_problems


@register(Tags.security)
def check_secrets(**kwargs: Any) -> list[CheckMessage]:
    secrets = read_secrets()
    problems = secret_problems(secrets.secret) + admin_secret_problems(
        secrets.admin_secret, secrets.secret
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
    warnings: list[CheckMessage] = []
    if secrets.secret and secrets.secret == getattr(settings, "SECRET_KEY", None):
        warnings.append(
            Warning(
                "PHOENIX_SECRET equals SECRET_KEY.",
                hint="Use a separate secret, so rotating one does not invalidate the other.",
                id="phoenix_apikeys.W002",
            )
        )
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
