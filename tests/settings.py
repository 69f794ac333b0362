"""Settings for the test suite: SQLite and locmem by default; DATABASE_URL / CACHE_URL switch
to PostgreSQL and Redis (see .ci/run)."""

import tempfile

import environ

env = environ.Env()

SECRET_KEY = "tests-only-django-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

PHOENIX_SECRET = "tests-only-phoenix-secret-0123456789abcdef"
PHOENIX_ADMIN_SECRET = None
PHOENIX_SECRET_FALLBACKS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "phoenix_apikeys",
    "tests.testapp",
]

AUTH_USER_MODEL = "testapp.User"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "phoenix_apikeys.middleware.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "phoenix_apikeys.middleware.APIKeyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.testapp.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite:///:memory:")}
# The key cache under test must be shared by processes (a per-process cache is refused): a
# file-based cache in a directory of this run's own, or Redis when CACHE_URL says so.
KEY_CACHE_DIR = tempfile.mkdtemp(prefix="phoenix-apikeys-cache-")
CACHES = {
    "default": env.cache("CACHE_URL", default="locmemcache://"),
    "apikeys": env.cache("CACHE_URL", default=f"filecache://{KEY_CACHE_DIR}"),
    # A per-process cache, for the tests that prove it is never used to serve keys.
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
    # A real file-based cache that tests switch into failing, as an unreachable Redis does.
    "flaky": {
        "BACKEND": "tests.testapp.caches.FlakyCache",
        "LOCATION": tempfile.mkdtemp(prefix="phoenix-apikeys-flaky-"),
    },
    # Redis on a port where nothing listens: every call is refused.
    "down": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.05, "SOCKET_TIMEOUT": 0.05},
    },
}

for _cache in CACHES.values():
    if "redis" in _cache["BACKEND"].lower():  # as a deployment should: bounded by timeouts
        _cache.setdefault("OPTIONS", {}).setdefault("SOCKET_CONNECT_TIMEOUT", 0.5)
        _cache["OPTIONS"].setdefault("SOCKET_TIMEOUT", 0.5)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "phoenix_apikeys.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {"TITLE": "phoenix_apikeys test API", "VERSION": "1"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"phoenix_apikeys": {"handlers": ["null"], "level": "DEBUG"}},
}
