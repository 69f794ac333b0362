"""The PHOENIX_APIKEYS settings object: defaults, overrides, reload on setting_changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from phoenix_apikeys.conf import DEFAULTS, phoenix_settings


def test_defaults_apply_when_nothing_is_set(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {}
    for name, default in DEFAULTS.items():
        assert getattr(phoenix_settings, name) == default


def test_override_is_seen_without_a_restart(settings: Any) -> None:
    assert phoenix_settings.USER_KEY_PREFIX == "phxu_"
    settings.PHOENIX_APIKEYS = {"USER_KEY_PREFIX": "acme_"}
    assert phoenix_settings.USER_KEY_PREFIX == "acme_"


def test_durations_accept_seconds(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"LAST_USED_INTERVAL": 60, "MAX_KEY_LIFETIME": 86400}
    assert phoenix_settings.LAST_USED_INTERVAL == timedelta(minutes=1)
    assert phoenix_settings.MAX_KEY_LIFETIME == timedelta(days=1)


def test_unknown_setting_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="CACHE_ALIASS"):
        phoenix_settings.CACHE_ALIASS  # noqa: B018


def test_secret_change_is_seen_without_a_restart(settings: Any) -> None:
    settings.PHOENIX_SECRET = "another-valid-phoenix-secret-0123456789"
    assert phoenix_settings.secrets.secret == "another-valid-phoenix-secret-0123456789"


def test_fallbacks_follow_the_current_secret(settings: Any) -> None:
    settings.PHOENIX_SECRET_FALLBACKS = ["old-secret-one", "old-secret-two"]
    assert phoenix_settings.verification_secrets == (
        settings.PHOENIX_SECRET,
        "old-secret-one",
        "old-secret-two",
    )


def test_broken_secret_leaves_nothing_to_verify_with(settings: Any) -> None:
    settings.PHOENIX_SECRET = "too-short-1"
    assert phoenix_settings.verification_secrets == ()
