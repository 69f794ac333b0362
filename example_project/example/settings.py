"""Example project: SQLite and no key cache with no configuration; DATABASE_URL,
CACHE_URL, PHOENIX_SECRET and PHOENIX_ADMIN_SECRET from the environment or example_project/.env.
"""

import sys
from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"

env = environ.Env()
if ENV_FILE.exists():
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Only a throwaway key is generated into .env by `manage.py start`; set your own in production.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="example-project-insecure-development-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Mail, e.g. expiry notices (`manage.py notify_expiring_keys`): printed to the console unless
# EMAIL_URL names a server (smtp+tls://user:password@smtp.example.com:587). DJANGO_ADMINS,
# comma-separated addresses, get the notices about system keys.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="webmaster@localhost")
_admins = env.list("DJANGO_ADMINS", default=[])
# Django 6.0 takes addresses; earlier versions (name, address) pairs.
ADMINS = _admins if django.VERSION >= (6, 0) else [(address, address) for address in _admins]

# PHOENIX_SECRET, PHOENIX_ADMIN_SECRET and PHOENIX_SECRET_FALLBACKS are deliberately not set
# here: phoenix_apikeys reads them from the environment (and so from .env).

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from here, not from a CDN
    "phoenix_apikeys",
    "example",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "phoenix_apikeys.middleware.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "phoenix_apikeys.middleware.APIKeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"
ASGI_APPLICATION = "example.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Keep connections (a request with an unknown key must not cost a new one), checked before reuse
# so a database restart is survived without restarting the server.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that cannot be reached costs seconds, not minutes: connecting gives up after
    # 2 s, a dead peer is noticed by TCP within about 5 s, and no statement runs past 5 s.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": 2,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": 5000,
            "options": "-c statement_timeout=5000",
        }
    )

# A read replica, when REPLICA_DATABASE_URL names one (as DATABASE_URL does the primary): the
# router sends reads there and writes and migrations to "default". phoenix_apikeys verifies
# keys and changes them on router.db_for_write, so however far the replica lags, a revoked key
# is refused and a new key works at once (stress/replica.py checks it against a real one).
if env.str("REPLICA_DATABASE_URL", default=""):
    DATABASES["replica"] = env.db("REPLICA_DATABASE_URL")
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # tests: the primary's connection
    if DATABASES["replica"]["ENGINE"] == DATABASES["default"]["ENGINE"]:
        # The same timeouts as the primary; options in REPLICA_DATABASE_URL win.
        DATABASES["replica"]["OPTIONS"] = {
            **DATABASES["default"].get("OPTIONS", {}),
            **DATABASES["replica"].get("OPTIONS", {}),
        }
    DATABASE_ROUTERS = ["example.routers.PrimaryReplicaRouter"]

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if "redis" in CACHES["default"]["BACKEND"].lower():
    # A stopped or frozen Redis must cost tens of milliseconds, not seconds: phoenix_apikeys
    # then verifies keys in the database and retries the cache after CACHE_RETRY_INTERVAL.
    options = CACHES["default"].setdefault("OPTIONS", {})
    options.setdefault("SOCKET_CONNECT_TIMEOUT", 0.05)
    options.setdefault("SOCKET_TIMEOUT", 0.05)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "phoenix_apikeys.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # A person may create their own user keys with curl -u (POST /v1/user/api_keys).
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # A JSON 503 with Retry-After when the database cannot be asked, e.g. to load a session.
    "EXCEPTION_HANDLER": "phoenix_apikeys.authentication.exception_handler",
}

# The OpenAPI schema at /api/schema/ and Swagger UI at /api/docs/, open to anyone. Swagger UI's
# and Redoc's files come from drf-spectacular-sidecar's static files, so the docs work offline.
SPECTACULAR_SETTINGS = {
    "TITLE": "phoenix_apikeys example",
    "DESCRIPTION": "Key management (/v1/) and a protected view (/api/hello/).",
    "VERSION": "1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Keys are served from the cache only when it is shared by every process (CACHE_URL, e.g.
# Redis); the local-memory default cannot see a key revoked by another process.
PHOENIX_APIKEYS = {
    "CACHE_ALIAS": "default" if env.str("CACHE_URL", default="") else None,
}

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The key commands (create_system_key, revoke_api_key, ...) say on stderr what they changed; the
# app's INFO line about the same change would repeat it, so commands log warnings and errors only.
_COMMAND = sys.argv[1] if Path(sys.argv[0]).name == "manage.py" and len(sys.argv) > 1 else ""
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "phoenix_apikeys": {
            "handlers": ["console"],
            "level": "INFO" if _COMMAND in ("", "runserver", "start") else "WARNING",
        },
        # Server errors (with their traceback) reach the console, not only ADMINS' inbox.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
