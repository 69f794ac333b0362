"""Settings of bench/inventory.py (admin, sessions, the key API); the other bench
cases never load this module. The database comes from INVENTORY_DATABASE_URL."""

import os

import environ

SECRET_KEY = "bench-only-django-secret-key-0123456789abcdef"
PHOENIX_SECRET = "bench-only-phoenix-secret-0123456789abcdef"
PHOENIX_APIKEYS = {"MAX_KEYS_PER_USER": None}  # else a user holds at most 100 live keys
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
STATIC_URL = "/static/"
DATABASES = {"default": environ.Env.db_url_config(os.environ["INVENTORY_DATABASE_URL"])}
DATABASES["default"]["CONN_MAX_AGE"] = None  # persistent, as in production

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "phoenix_apikeys",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
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
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

ROOT_URLCONF = "benchsite.inventory_urls"
