"""System checks: each secret rule alone, all rules in one run, settings and deploy warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import pytest
from django.core.checks import run_checks
from rest_framework.authentication import BaseAuthentication

from phoenix_apikeys.middleware import APIKeyMiddleware

from .factories import SystemKeyFactory

GOOD_SECRET = "tests-only-phoenix-secret-0123456789abcdef"
GOOD_ADMIN = "tests-only-admin-secret-9876543210zyxwvu"
# Admin secrets that pass the old str.isdigit/str.islower rules yet can never authenticate.
NON_ASCII_DIGIT_ONLY = "tests-only-admin-secret-\u0663\u0663\u0663\u0663-zyxwvutsrq"
NON_ASCII_LOWERCASE_ONLY = "TESTS-ONLY-ADMIN-SECRET-\u00e9-9876543210-ZYXWVU"
WITH_WHITESPACE = "tests-only admin-secret-9876543210zyxwvu"
SYSTEM_PREFIXED = "phxs_tests-only-admin-secret-9876543210zyx"
USER_PREFIXED = "phxu_tests-only-admin-secret-9876543210zyx"
CUSTOM_PREFIXED = "acme_tests-only-admin-secret-9876543210zyx"
# 40 characters that pass every error rule but are one letter repeated plus a digit.
LOW_VARIETY = "a" * 39 + "1"


def ids(**secrets: Any) -> set[str]:
    return {m.id for m in run_checks() if m.id and m.id.startswith("phoenix_apikeys.")}


@pytest.fixture
def secrets(settings: Any) -> Any:
    def configure(secret: str | None = GOOD_SECRET, admin: str | None = None) -> None:
        settings.PHOENIX_SECRET = secret
        settings.PHOENIX_ADMIN_SECRET = admin

    return configure


def test_good_secrets_pass(secrets: Any) -> None:
    secrets(GOOD_SECRET, GOOD_ADMIN)
    assert ids() == set()


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (None, {"phoenix_apikeys.E001"}),
        ("", {"phoenix_apikeys.E001"}),
        ("abc123", {"phoenix_apikeys.E002"}),
        ("no-digits-in-this-phoenix-secret-at-all", {"phoenix_apikeys.E003"}),
        ("NO-LOWERCASE-IN-THIS-SECRET-0123456789", {"phoenix_apikeys.E004"}),
        ("has whitespace inside 0123456789 abcdef", {"phoenix_apikeys.E005"}),
        ("non-ascii-é-secret-0123456789-abcdefghij", {"phoenix_apikeys.E005"}),
    ],
)
def test_each_phoenix_secret_rule_alone(
    secrets: Any, secret: str | None, expected: set[str]
) -> None:
    secrets(secret)
    assert ids() == expected


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        ("short-1a", {"phoenix_apikeys.E012"}),
        ("no-digits-in-this-admin-secret-at-all-x", {"phoenix_apikeys.E013"}),
        ("NO-LOWERCASE-IN-THIS-ADMIN-SECRET-012345", {"phoenix_apikeys.E014"}),
        (GOOD_SECRET, {"phoenix_apikeys.E015"}),
    ],
)
def test_each_admin_secret_rule_alone(secrets: Any, admin: str, expected: set[str]) -> None:
    secrets(GOOD_SECRET, admin)
    assert ids() == expected


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (
            "non-ascii-digit-only-phoenix-secret-\u0663-abcdef",
            {"phoenix_apikeys.E003", "phoenix_apikeys.E005"},
        ),
        (
            "NON-ASCII-LOWERCASE-ONLY-\u00e9-0123456789-ABCDEF",
            {"phoenix_apikeys.E004", "phoenix_apikeys.E005"},
        ),
        ("control-character-\x01-phoenix-secret-0123456789", {"phoenix_apikeys.E005"}),
    ],
)
def test_phoenix_secret_classes_are_ascii(secrets: Any, secret: str, expected: set[str]) -> None:
    """'\u0663' is a digit and '\u00e9' lowercase to Python, but neither survives as ASCII."""
    secrets(secret)
    assert ids() == expected


def test_admin_secret_whose_only_digit_is_non_ascii(secrets: Any) -> None:
    secrets(GOOD_SECRET, NON_ASCII_DIGIT_ONLY)
    assert ids() == {"phoenix_apikeys.E013", "phoenix_apikeys.E016"}


def test_admin_secret_whose_only_lowercase_letter_is_non_ascii(secrets: Any) -> None:
    secrets(GOOD_SECRET, NON_ASCII_LOWERCASE_ONLY)
    assert ids() == {"phoenix_apikeys.E014", "phoenix_apikeys.E016"}


def test_admin_secret_with_whitespace(secrets: Any) -> None:
    secrets(GOOD_SECRET, WITH_WHITESPACE)
    assert ids() == {"phoenix_apikeys.E016"}


@pytest.mark.parametrize("admin", [SYSTEM_PREFIXED, USER_PREFIXED])
def test_admin_secret_starting_with_a_default_key_prefix(secrets: Any, admin: str) -> None:
    secrets(GOOD_SECRET, admin)
    assert ids() == {"phoenix_apikeys.E017"}


def test_admin_secret_starting_with_a_custom_key_prefix(settings: Any, secrets: Any) -> None:
    settings.PHOENIX_APIKEYS = {"USER_KEY_PREFIX": "acme_"}
    secrets(GOOD_SECRET, CUSTOM_PREFIXED)
    assert ids() == {"phoenix_apikeys.E017"}


def test_default_prefix_is_allowed_once_the_prefixes_are_custom(
    settings: Any, secrets: Any
) -> None:
    settings.PHOENIX_APIKEYS = {"SYSTEM_KEY_PREFIX": "acmes_", "USER_KEY_PREFIX": "acmeu_"}
    secrets(GOOD_SECRET, SYSTEM_PREFIXED)
    assert ids() == set()


def test_admin_secret_equal_to_secret_key(settings: Any, secrets: Any) -> None:
    settings.SECRET_KEY = GOOD_ADMIN
    secrets(GOOD_SECRET, GOOD_ADMIN)
    assert ids() == {"phoenix_apikeys.E018"}


def test_every_admin_secret_rule_broken_at_once_is_reported_in_one_run(
    settings: Any, secrets: Any
) -> None:
    """Every admin rule but two that cannot break together with these: E011 needs PHOENIX_SECRET
    unset (E015 needs it equal), and E014 (no lowercase) cannot hold for a value starting with a
    valid key prefix (E017), as every valid prefix has a lowercase letter."""
    value = "phxs_ \u00e9"
    settings.SECRET_KEY = value
    secrets(value, value)
    admin_ids = {i for i in ids() if i.startswith("phoenix_apikeys.E01")}
    assert admin_ids == {
        "phoenix_apikeys.E012",
        "phoenix_apikeys.E013",
        "phoenix_apikeys.E015",
        "phoenix_apikeys.E016",
        "phoenix_apikeys.E017",
        "phoenix_apikeys.E018",
    }


def test_admin_secret_without_phoenix_secret(secrets: Any) -> None:
    secrets(None, GOOD_ADMIN)
    assert ids() == {"phoenix_apikeys.E001", "phoenix_apikeys.E011"}


def test_every_broken_rule_is_reported_in_one_run(secrets: Any) -> None:
    secrets("SHORT", "LOUD")
    assert ids() == {
        "phoenix_apikeys.E002",
        "phoenix_apikeys.E003",
        "phoenix_apikeys.E004",
        "phoenix_apikeys.E012",
        "phoenix_apikeys.E013",
        "phoenix_apikeys.E014",
    }


def test_messages_name_the_variable_and_carry_a_hint(secrets: Any) -> None:
    secrets("SHORT", "LOUD")
    messages = [m for m in run_checks() if m.id and m.id.startswith("phoenix_apikeys.")]
    for message in messages:
        assert message.msg.startswith(("PHOENIX_SECRET ", "PHOENIX_ADMIN_SECRET "))
        assert message.hint
        assert "SHORT" not in message.msg and "LOUD" not in message.msg  # never echo secrets


def test_secrets_come_from_the_environment_when_not_in_settings(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings.PHOENIX_SECRET
    monkeypatch.setenv("PHOENIX_SECRET", "short")
    assert "phoenix_apikeys.E002" in ids()


def test_unknown_setting_is_an_error(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": None, "LAST_USED_INTERVL": 60}
    assert ids() == {"phoenix_apikeys.E021"}


@pytest.mark.parametrize(
    ("system", "user", "expected"),
    [
        ("PHXS_", "phxu_", {"phoenix_apikeys.E022"}),
        ("phx_", "phx_u_", {"phoenix_apikeys.E023"}),
        ("same_", "same_", {"phoenix_apikeys.E023"}),
    ],
)
def test_bad_prefixes_are_errors(settings: Any, system: str, user: str, expected: set[str]) -> None:
    settings.PHOENIX_APIKEYS = {"SYSTEM_KEY_PREFIX": system, "USER_KEY_PREFIX": user}
    assert ids() == expected


W003 = "phoenix_apikeys.W003"


def deploy_ids() -> set[str]:
    return {
        m.id
        for m in run_checks(include_deployment_checks=True)
        if m.id and m.id.startswith("phoenix_apikeys.W")
    }


@pytest.mark.django_db
def test_admin_secret_with_a_system_key_warns_on_deploy(secrets: Any) -> None:
    secrets(GOOD_SECRET, GOOD_ADMIN)
    assert deploy_ids() == set()
    SystemKeyFactory()
    assert deploy_ids() == {"phoenix_apikeys.W001"}


def test_phoenix_secret_equal_to_secret_key_warns_on_deploy(settings: Any, secrets: Any) -> None:
    secrets(GOOD_SECRET)
    settings.SECRET_KEY = GOOD_SECRET
    assert deploy_ids() == {"phoenix_apikeys.W002"}


@pytest.mark.django_db  # W001 looks for a system key whenever an admin secret is set
@pytest.mark.parametrize("variable", ["PHOENIX_SECRET", "PHOENIX_ADMIN_SECRET"])
def test_low_variety_secret_warns_on_deploy(settings: Any, secrets: Any, variable: str) -> None:
    secrets(GOOD_SECRET, GOOD_ADMIN)
    setattr(settings, variable, LOW_VARIETY)
    assert ids() == set()  # a warning on deploy only, never an error
    assert deploy_ids() == {"phoenix_apikeys.W003"}


@pytest.mark.django_db  # W001 looks for a system key whenever an admin secret is set
def test_low_variety_warning_names_the_variable_not_the_value(secrets: Any) -> None:
    secrets(GOOD_SECRET, LOW_VARIETY)
    [message] = [m for m in run_checks(include_deployment_checks=True) if m.id == W003]
    assert message.msg.startswith("PHOENIX_ADMIN_SECRET ")
    assert LOW_VARIETY not in message.msg
    assert "secrets.token_urlsafe(48)" in message.hint


@pytest.mark.django_db  # W001 looks for a system key whenever an admin secret is set
def test_generated_secrets_do_not_warn_on_deploy(secrets: Any) -> None:
    secrets(token_urlsafe(48), token_urlsafe(48))
    assert "phoenix_apikeys.W003" not in deploy_ids()


def test_deploy_checks_survive_an_empty_secret_key(settings: Any, secrets: Any) -> None:
    """Django raises on reading an empty SECRET_KEY; its own check reports that, ours must not."""
    secrets(GOOD_SECRET)
    settings.SECRET_KEY = ""
    assert deploy_ids() == set()


@pytest.mark.parametrize(
    "command", [["check"], ["migrate", "--no-input"], ["runserver", "--noreload", "127.0.0.1:0"]]
)
def test_management_commands_refuse_to_start_with_broken_secrets(command: list[str]) -> None:
    """Real processes, as an operator would run them: every broken rule named, non-zero exit."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_from_env",
        "PYTHONPATH": str(root),
    }
    env.update(PHOENIX_SECRET="short", PHOENIX_ADMIN_SECRET="short")
    result = subprocess.run(
        [sys.executable, "-m", "django", *command],
        env=env,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for check_id in ("E002", "E003", "E012", "E013"):
        assert f"phoenix_apikeys.{check_id}" in output


# The key cache and the system user ------------------------------------------------------------


def cache_ids(settings: Any, alias: str | None) -> set[str]:
    settings.PHOENIX_APIKEYS = {"CACHE_ALIAS": alias}
    return {message.id for message in run_checks() if message.id.startswith("phoenix_apikeys")}


def test_a_per_process_key_cache_is_an_error(settings: Any) -> None:
    assert "phoenix_apikeys.E024" in cache_ids(settings, "local")


@pytest.mark.parametrize("alias", [None, "apikeys"])
def test_no_cache_or_a_shared_one_passes(settings: Any, alias: str | None) -> None:
    assert "phoenix_apikeys.E024" not in cache_ids(settings, alias)


def system_user_ids() -> set[str]:
    return {message.id for message in run_checks(databases=["default"])}


@pytest.mark.django_db
def test_a_powerless_system_user_passes() -> None:
    from phoenix_apikeys.models import system_user

    system_user()
    assert not system_user_ids() & {"phoenix_apikeys.E031", "phoenix_apikeys.E032"}
    assert "phoenix_apikeys.E033" not in system_user_ids()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "check_id"),
    [
        ({"is_staff": True}, "phoenix_apikeys.E031"),
        ({"is_superuser": True}, "phoenix_apikeys.E031"),
        ({"password": "md5$salt$0123456789abcdef0123456789abcdef"}, "phoenix_apikeys.E032"),
        ({"username": "renamed"}, "phoenix_apikeys.E033"),
    ],
)
def test_a_system_user_that_gained_power_or_a_name_is_an_error(
    change: dict[str, Any], check_id: str
) -> None:
    from phoenix_apikeys.models import system_user

    user = system_user()
    type(user)._default_manager.filter(pk=user.pk).update(**change)
    assert check_id in system_user_ids()


@pytest.mark.django_db
def test_the_system_user_check_reads_the_database_only_when_asked() -> None:
    from phoenix_apikeys.models import system_user

    user = system_user()
    type(user)._default_manager.filter(pk=user.pk).update(is_superuser=True)
    assert "phoenix_apikeys.E031" not in {message.id for message in run_checks()}


@pytest.mark.parametrize(
    ("options", "warned"),
    [
        ({}, True),
        ({"SOCKET_TIMEOUT": 0.05}, True),
        ({"SOCKET_TIMEOUT": 0.05, "SOCKET_CONNECT_TIMEOUT": 0.05}, False),
        ({"socket_timeout": 0.05, "socket_connect_timeout": 0.05}, False),
    ],
)
def test_a_redis_cache_without_socket_timeouts_warns(
    settings: Any, options: dict[str, Any], warned: bool
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "OPTIONS": options,
        },
    }
    assert ("phoenix_apikeys.W004" in cache_ids(settings, "redis")) is warned


# A cache alias that names no cache ------------------------------------------------------------

E025 = "phoenix_apikeys.E025"


@pytest.mark.parametrize("name", ["CACHE_ALIAS", "THROTTLE_CACHE_ALIAS"])
def test_a_cache_alias_missing_from_caches_is_an_error(settings: Any, name: str) -> None:
    settings.PHOENIX_APIKEYS = {name: "nowhere"}
    [message] = [m for m in run_checks() if m.id == E025]
    assert message.msg.startswith(f"PHOENIX_APIKEYS[{name!r}] = 'nowhere' names no cache")
    assert f"Set {name} to one of CACHES' aliases ('default', " in message.hint


@pytest.mark.parametrize(
    "configured",
    [
        {},
        {"CACHE_ALIAS": "apikeys", "THROTTLE_CACHE_ALIAS": "apikeys"},
        {"CACHE_ALIAS": None, "THROTTLE_CACHE_ALIAS": None},
        {"CACHE_ALIAS": "", "THROTTLE_CACHE_ALIAS": ""},  # empty turns them off, as at run time
        {"THROTTLE_CACHE_ALIAS": "nowhere", "FAILED_AUTH_LIMIT": None},  # no throttle: unused
    ],
)
def test_cache_aliases_that_exist_or_are_unused_pass(
    settings: Any, configured: dict[str, Any]
) -> None:
    settings.PHOENIX_APIKEYS = configured
    assert E025 not in ids()


# Wiring: DRF installed, APIKeyAuthentication first, APIKeyMiddleware after AuthenticationMiddleware


class OtherBearerAuthentication(BaseAuthentication):
    """Another class that challenges with Bearer (a JWT class, say)."""

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="tokens"'


class SubclassedKeyMiddleware(APIKeyMiddleware):
    pass


urlpatterns: list[Any] = []  # a host that mounts no REST API (ROOT_URLCONF = __name__)
OURS = "phoenix_apikeys.authentication.APIKeyAuthentication"
SESSION = "rest_framework.authentication.SessionAuthentication"
JSON_ONLY = ["rest_framework.renderers.JSONRenderer"]


@pytest.fixture
def without_drf_app(settings: Any) -> None:
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "rest_framework"]


@pytest.mark.usefixtures("without_drf_app")
def test_drf_missing_from_installed_apps_is_an_error(settings: Any) -> None:
    [message] = [m for m in run_checks() if m.id == "phoenix_apikeys.E041"]
    assert "BrowsableAPIRenderer" in message.msg
    assert message.hint.startswith("Add 'rest_framework' to INSTALLED_APPS")


@pytest.mark.usefixtures("without_drf_app")
@pytest.mark.parametrize("mounted", [True, False])
def test_drf_missing_is_an_error_when_either_the_api_or_the_authentication_is_used(
    settings: Any, mounted: bool
) -> None:
    settings.ROOT_URLCONF = "tests.testapp.api_urls" if mounted else __name__
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [SESSION] if mounted else [OURS],
    }
    assert "phoenix_apikeys.E041" in ids()


@pytest.mark.usefixtures("without_drf_app")
@pytest.mark.parametrize(
    "rest_framework",
    [
        {"DEFAULT_RENDERER_CLASSES": JSON_ONLY},  # JSON renders without DRF's templates
        {"DEFAULT_AUTHENTICATION_CLASSES": [SESSION]},  # with no REST API mounted: DRF unused
    ],
)
def test_drf_missing_passes_when_nothing_needs_its_templates(
    settings: Any, rest_framework: dict[str, Any]
) -> None:
    settings.ROOT_URLCONF = __name__
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **rest_framework}
    assert "phoenix_apikeys.E041" not in ids()


W005 = "phoenix_apikeys.W005"


@pytest.mark.parametrize(
    ("first", "answer"),
    [
        (SESSION, "403 without WWW-Authenticate"),
        ("rest_framework.authentication.BasicAuthentication", "401 challenging 'basic'"),
        ("rest_framework.authentication.TokenAuthentication", "401 challenging 'token'"),
    ],
)
def test_another_authentication_before_ours_warns(settings: Any, first: str, answer: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [first, SESSION, OURS],
    }
    [message] = [m for m in run_checks() if m.id == W005]
    assert f"a bad key gets {answer} instead of 401" in message.msg
    assert message.hint.startswith("Put APIKeyAuthentication first")


@pytest.mark.parametrize(
    "classes",
    [
        [OURS, SESSION],
        [SESSION],  # no APIKeyAuthentication: the middleware or per-view classes do the work
        [f"{__name__}.OtherBearerAuthentication", SESSION, OURS],  # the challenge is still Bearer
    ],
)
def test_authentication_orders_that_keep_the_bearer_challenge_pass(
    settings: Any, classes: list[str]
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": classes}
    assert W005 not in ids()


def test_the_warning_follows_a_custom_keyword(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"AUTH_HEADER_KEYWORD": "Token"}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.TokenAuthentication",
            OURS,
        ],
    }
    assert W005 not in ids()


E042 = "phoenix_apikeys.E042"
DJANGO_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
KEY_MIDDLEWARE = "phoenix_apikeys.middleware.APIKeyMiddleware"


def middleware_with(settings: Any, ours: str, before_django_auth: bool) -> list[str]:
    others = [m for m in settings.MIDDLEWARE if m != KEY_MIDDLEWARE]
    at = others.index(DJANGO_AUTH) + (0 if before_django_auth else 1)
    return [*others[:at], ours, *others[at:]]


@pytest.mark.parametrize("ours", [KEY_MIDDLEWARE, f"{__name__}.SubclassedKeyMiddleware"])
def test_the_key_middleware_before_authentication_middleware_is_an_error(
    settings: Any, ours: str
) -> None:
    settings.MIDDLEWARE = middleware_with(settings, ours, before_django_auth=True)
    [message] = [m for m in run_checks() if m.id == E042]
    assert message.hint == f"Move {KEY_MIDDLEWARE!r} below {DJANGO_AUTH!r} in MIDDLEWARE."


def test_the_key_middleware_after_authentication_middleware_or_alone_passes(
    settings: Any,
) -> None:
    settings.MIDDLEWARE = middleware_with(settings, KEY_MIDDLEWARE, before_django_auth=False)
    assert E042 not in ids()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != DJANGO_AUTH]
    assert E042 not in ids()


W007 = "phoenix_apikeys.W007"
KEY_CSRF = "phoenix_apikeys.middleware.CsrfViewMiddleware"
DJANGO_CSRF = "django.middleware.csrf.CsrfViewMiddleware"


def test_the_key_middleware_with_djangos_own_csrf_middleware_is_warned(settings: Any) -> None:
    settings.MIDDLEWARE = [DJANGO_CSRF if m == KEY_CSRF else m for m in settings.MIDDLEWARE]
    [message] = [m for m in run_checks() if m.id == W007]
    assert message.hint.startswith(f"Use {KEY_CSRF!r} in its place")


def test_djangos_csrf_middleware_beside_the_apps_is_warned(settings: Any) -> None:
    at = settings.MIDDLEWARE.index(KEY_CSRF)
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:at], DJANGO_CSRF, *settings.MIDDLEWARE[at:]]
    assert W007 in ids()


def test_the_csrf_middleware_of_the_app_or_no_key_middleware_passes(settings: Any) -> None:
    assert KEY_CSRF in settings.MIDDLEWARE
    assert W007 not in ids()
    settings.MIDDLEWARE = [
        DJANGO_CSRF if m == KEY_CSRF else m for m in settings.MIDDLEWARE if m != KEY_MIDDLEWARE
    ]
    assert W007 not in ids()


# E026 / E027: settings of the wrong type or range, and USE_TZ ---------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAST_USED_INTERVAL", "5m"),
        ("AUTH_HEADER_KEYWORD", None),
        ("AUTH_HEADER_KEYWORD", ""),
        ("AUTH_HEADER_KEYWORD", "Bearer "),
        ("TRUSTED_PROXY_COUNT", "x"),
        ("TRUSTED_PROXY_COUNT", 0),
        ("MAX_KEY_LIFETIME", "90 days"),
        ("MAX_KEY_LIFETIME", 1e20),
        ("MAX_KEY_LIFETIME", 0),
        ("CACHE_TIMEOUT", "300"),
        ("CACHE_TIMEOUT", True),
        ("FAILED_AUTH_LIMIT", 0),
        ("FAILED_AUTH_WINDOW", 1.5),
        ("SYSTEM_USERNAME", ""),
        ("EVENT_RETENTION", 0),
        ("EVENT_RETENTION", "365d"),
        ("EVENT_RETENTION", None),
    ],
)
def test_a_setting_of_the_wrong_type_or_range_is_an_error(
    settings: Any, secrets: Any, name: str, value: Any
) -> None:
    settings.PHOENIX_APIKEYS = {name: value}
    messages = [m for m in run_checks() if m.id == "phoenix_apikeys.E026"]
    assert len(messages) == 1
    assert name in messages[0].msg and messages[0].hint.startswith("It must be")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAST_USED_INTERVAL", 0),
        ("MAX_KEY_LIFETIME", None),
        ("MAX_KEY_LIFETIME", 86400),
        ("FAILED_AUTH_LIMIT", None),
        ("AUTH_HEADER_KEYWORD", "Token"),
        ("CLIENT_ADDRESS_HEADER", "HTTP_X_FORWARDED_FOR"),
        ("EVENT_RETENTION", 86400),
    ],
)
def test_good_setting_values_pass(settings: Any, secrets: Any, name: str, value: Any) -> None:
    settings.PHOENIX_APIKEYS = {name: value}
    assert "phoenix_apikeys.E026" not in {m.id for m in run_checks()}


def test_use_tz_off_is_an_error(settings: Any, secrets: Any) -> None:
    settings.USE_TZ = False
    assert "phoenix_apikeys.E027" in {m.id for m in run_checks()}
    settings.USE_TZ = True
    assert "phoenix_apikeys.E027" not in {m.id for m in run_checks()}
