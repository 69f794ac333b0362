"""Checks for a project's installation mistakes: misspelled PHOENIX_* settings, a setting that
hides a secret set in the environment, and tables that ``migrate`` has not made yet."""

from __future__ import annotations

import difflib
import sys
from typing import Any

import environ
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError, connections, router

from .conf import SECRET_SETTINGS

KNOWN_SETTINGS = frozenset({"PHOENIX_APIKEYS", *SECRET_SETTINGS})


@register()
def check_unknown_settings(**kwargs: Any) -> list[CheckMessage]:
    """W020: a misspelled name (PHOENIX_APIKEY, PHOENIX_ADMIN_SECRETS) is otherwise silent."""
    names = sorted(
        name for name in dir(settings) if name.startswith("PHOENIX_") and name not in KNOWN_SETTINGS
    )
    warnings: list[CheckMessage] = []
    for name in names:
        close = difflib.get_close_matches(name, KNOWN_SETTINGS, n=1)
        guess = f" Did you mean {close[0]}?" if close else ""
        warnings.append(
            Warning(
                f"Unknown setting {name}: phoenix_apikeys does not read it.{guess}",
                hint=f"phoenix_apikeys reads {', '.join(sorted(KNOWN_SETTINGS))}.",
                id="phoenix_apikeys.W020",
            )
        )
    return warnings


@register(Tags.security)
def check_secrets_hidden_by_settings(**kwargs: Any) -> list[CheckMessage]:
    """W021: a setting wins over the environment even when it is None or empty, so
    ``PHOENIX_SECRET = None`` hides a PHOENIX_SECRET exported in the environment."""
    return [
        Warning(
            f"{name} is empty (None) in your settings, which hides the {name} set in the "
            "environment: phoenix_apikeys reads the setting whenever it exists.",
            hint=f"Delete {name} from your settings to use the environment's value, or set "
            "the value in your settings.",
            id="phoenix_apikeys.W021",
        )
        for name in SECRET_SETTINGS
        if hasattr(settings, name) and not getattr(settings, name) and environ.Env.ENVIRON.get(name)
    ]


@register(Tags.database)
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
            f"Database {using!r} has no table {', '.join(names)}: every request with an API key "
            "would be answered 503.",
            hint=f"Run `manage.py migrate --database {using}`.",
            id="phoenix_apikeys.W022",
        )
        for using, names in missing.items()
    ]
