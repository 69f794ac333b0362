"""Bench settings: one database chosen by BENCH_DB, a local-memory and a Redis cache.

Persistent connections (CONN_MAX_AGE=None) as in any production deployment, so every scheme is
timed against a warm connection; no middleware, so the timings are the view and its
authentication.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "bench-only-django-secret-key-0123456789abcdef"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

PHOENIX_SECRET = "bench-only-phoenix-secret-0123456789abcdef"
PHOENIX_ADMIN_SECRET = "bench-only-admin-secret-9876543210zyxwvuts"
PHOENIX_SECRET_FALLBACKS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "knox",
    "rest_framework_api_key",
    "phoenix_apikeys",
]

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"

BENCH_DB = os.environ.get("BENCH_DB", "sqlite")
# One database per key count, so every count is timed in the same interleaved rounds; the
# router sends each request to the database of the case being timed.
BENCH_SIZES = [int(size) for size in os.environ.get("BENCH_SIZES", "1000").split(",")]


def database(size: int) -> dict[str, object]:
    if BENCH_DB.startswith("postgres"):
        suffix = "_prepared" if BENCH_DB == "postgres-prepared" else ""
        settings: dict[str, object] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": f"{os.environ.get('BENCH_PG_NAME', 'wt_bench_run')}_{size}{suffix}",
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "CONN_MAX_AGE": None,
        }
        if suffix:
            # Django's opt-in for server-side binding and psycopg's automatic prepared
            # statements (off by default for transaction-pooling proxies); every scheme gains.
            settings["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
        return settings
    folder = Path(os.environ.get("BENCH_SQLITE_DIR", str(HERE.parent / "results")))
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(folder / f"bench-{size}.db"),
        "CONN_MAX_AGE": None,
    }


DATABASES = {"default": database(BENCH_SIZES[0])}
DATABASES.update({f"keys_{size}": database(size) for size in BENCH_SIZES[1:]})
DATABASE_ROUTERS = ["benchsite.routing.CaseDatabase"]

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "locmem": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "bench-keys",
    },
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
    },
}

PHOENIX_APIKEYS = {
    "CACHE_ALIAS": os.environ.get("BENCH_CACHE_ALIAS") or None,
    # Counted (and timed) but never tripped by the bench's thousands of failures.
    "FAILED_AUTH_LIMIT": 10**12,
    # The bench makes up to a million keys for a handful of owners.
    "MAX_KEYS_PER_USER": None,
    "MAX_SYSTEM_KEYS": None,
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Failed authentications are logged by phoenix_apikeys (a record is still made and dropped
# here); the peers log nothing, so sending ours to a file or terminal would time the handler.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {
        "phoenix_apikeys": {"handlers": ["null"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["null"], "level": "ERROR", "propagate": False},
    },
}
