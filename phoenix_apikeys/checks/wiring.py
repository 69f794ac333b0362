"""The wiring into DRF and the middleware stack."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from rest_framework.request import Request
from rest_framework.settings import api_settings

from ..authentication import APIKeyAuthentication
from ..conf import phoenix_settings
from .base import check

AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
KEY_MIDDLEWARE = "phoenix_apikeys.middleware.APIKeyMiddleware"
DJANGO_CSRF_MIDDLEWARE = "django.middleware.csrf.CsrfViewMiddleware"
KEY_CSRF_MIDDLEWARE = "phoenix_apikeys.middleware.CsrfViewMiddleware"
KEY_AUTHENTICATION = "phoenix_apikeys.authentication.APIKeyAuthentication"


@check(Tags.templates)
def check_rest_framework_installed(**kwargs: Any) -> list[CheckMessage]:
    """E041: DRF's HTML renderers load their templates through INSTALLED_APPS, so without the
    app every response they render (any DRF view a browser opens) is a 500. JSON-only renderers
    need no template, and then DRF works as a plain library."""
    if apps.is_installed("rest_framework") or not _drf_is_used():
        return []
    renderers = [
        r.__name__ for r in _drf_classes("DEFAULT_RENDERER_CLASSES") if _renders_drf_html(r)
    ]
    if not renderers:
        return []
    return [
        Error(
            gettext(
                "'rest_framework' is not in INSTALLED_APPS, but REST_FRAMEWORK's "
                "DEFAULT_RENDERER_CLASSES has %(renderers)s, rendering DRF's templates: "
                "every API response a browser asks for would be a server error "
                "(TemplateDoesNotExist)."
            )
            % {"renderers": ", ".join(renderers)},
            hint=gettext(
                "Add 'rest_framework' to INSTALLED_APPS (or set REST_FRAMEWORK"
                "['DEFAULT_RENDERER_CLASSES'] to JSON renderers only)."
            ),
            id="phoenix_apikeys.E041",
        )
    ]


def _drf_is_used() -> bool:
    """APIKeyAuthentication is a default authentication class, or the REST API is mounted."""
    classes = _drf_classes("DEFAULT_AUTHENTICATION_CLASSES")
    if any(issubclass(cls, APIKeyAuthentication) for cls in classes):
        return True
    if not getattr(settings, "ROOT_URLCONF", None):
        return False
    try:
        reverse("phoenix_apikeys:current-user")
    except (NoReverseMatch, ImportError, ImproperlyConfigured):
        return False  # not mounted, or a URLconf that Django's own URL checks report
    return True


def _renders_drf_html(renderer: type) -> bool:
    names = (getattr(renderer, "template", None), getattr(renderer, "template_pack", None))
    return any(isinstance(name, str) and name.startswith("rest_framework/") for name in names)


def _drf_classes(name: str) -> list[type]:
    """A REST_FRAMEWORK list of classes, imported (its stubs type the setting as paths)."""
    try:
        return list(getattr(api_settings, name))
    except ImportError:  # DRF names the path that does not import on the first request
        return []


@check(Tags.security)
def check_authentication_order(**kwargs: Any) -> list[CheckMessage]:
    """W005: DRF answers a failed authentication with the first class's challenge; when that
    class sends none (SessionAuthentication) or another scheme, a bad key gets 403 or a 401 the
    client cannot act on, not 401 with ``WWW-Authenticate: Bearer``."""
    classes = _drf_classes("DEFAULT_AUTHENTICATION_CLASSES")
    ours = [i for i, cls in enumerate(classes) if issubclass(cls, APIKeyAuthentication)]
    if not ours or ours[0] == 0:
        return []
    first = classes[0]
    keyword = str(phoenix_settings.AUTH_HEADER_KEYWORD)
    scheme = _challenge_scheme(first)
    if scheme == keyword.lower():
        return []
    answer = (
        gettext("403 without WWW-Authenticate")
        if scheme is None
        else gettext("401 challenging %(scheme)s") % {"scheme": repr(scheme)}
    )
    return [
        Warning(
            gettext(
                "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'] lists %(first)s before "
                "APIKeyAuthentication: DRF takes WWW-Authenticate from the first class, so a bad "
                "key gets %(answer)s instead of 401 with 'WWW-Authenticate: %(keyword)s'. With "
                "APIKeyMiddleware on, a session class listed first also claims requests the "
                "middleware authenticated by key: request.auth is then None in your views "
                "(phoenix_apikeys.permissions still sees the key, through "
                "credential_of(request))."
            )
            % {"first": first.__name__, "answer": answer, "keyword": keyword},
            hint=gettext(
                "Put APIKeyAuthentication first: move %(path)s to the top of "
                "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']."
            )
            % {"path": repr(KEY_AUTHENTICATION)},
            id="phoenix_apikeys.W005",
        )
    ]


def _challenge_scheme(cls: type) -> str | None:
    """The lower-cased scheme of the challenge ``cls`` sends, asked as DRF asks it."""
    try:
        header = cls().authenticate_header(Request(HttpRequest()))
    except Exception:  # a class that needs more than an empty request: its scheme is unknown
        return None
    return header.split(None, 1)[0].lower() if isinstance(header, str) and header.strip() else None


@check(Tags.security)
def check_middleware_order(**kwargs: Any) -> list[CheckMessage]:
    """E042: AuthenticationMiddleware sets request.user to the session's lazy user whatever was
    there, so after APIKeyMiddleware it would hide the key's user from every plain view."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    ours = _position(middleware, KEY_MIDDLEWARE)
    django_auth = _position(middleware, AUTHENTICATION_MIDDLEWARE)
    if ours is None or django_auth is None or ours > django_auth:
        return []
    return [
        Error(
            gettext(
                "%(ours)s comes before %(theirs)s in MIDDLEWARE: AuthenticationMiddleware then "
                "replaces the key's user with the session's, so plain Django views see an "
                "anonymous (or another, logged-in) user instead of the key's."
            )
            % {"ours": repr(middleware[ours]), "theirs": repr(middleware[django_auth])},
            hint=gettext("Move %(ours)s below %(theirs)s in MIDDLEWARE.")
            % {"ours": repr(KEY_MIDDLEWARE), "theirs": repr(AUTHENTICATION_MIDDLEWARE)},
            id="phoenix_apikeys.E042",
        )
    ]


@check(Tags.security)
def check_csrf_middleware(**kwargs: Any) -> list[CheckMessage]:
    """W007: Django's CSRF middleware knows nothing of keys, so with it (even beside ours) a
    key's POST to a plain Django view is refused (403) for want of a CSRF cookie no API client
    has."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    blind = [
        path
        for path in middleware
        if _is(path, DJANGO_CSRF_MIDDLEWARE) and not _is(path, KEY_CSRF_MIDDLEWARE)
    ]
    if not blind or _position(middleware, KEY_MIDDLEWARE) is None:
        return []
    return [
        Warning(
            gettext(
                "%(theirs)s in MIDDLEWARE knows nothing of API keys: a POST, PUT, PATCH or "
                "DELETE authenticated by a key to a plain Django view is refused (403, CSRF). "
                "DRF's views are not concerned."
            )
            % {"theirs": repr(blind[0])},
            hint=gettext(
                "Use %(ours)s in its place: it skips the check only for a request "
                "APIKeyMiddleware authenticated by a key."
            )
            % {"ours": repr(KEY_CSRF_MIDDLEWARE)},
            id="phoenix_apikeys.W007",
        )
    ]


def _position(middleware: list[Any], dotted: str) -> int | None:
    """Index of the first entry that is ``dotted`` or a subclass of it."""
    return next((index for index, path in enumerate(middleware) if _is(path, dotted)), None)


def _is(path: Any, dotted: str) -> bool:
    """Whether a MIDDLEWARE entry is ``dotted`` or a subclass of it."""
    try:
        found = import_string(path) if isinstance(path, str) else None
    except ImportError:
        return False  # Django names a middleware that does not import when it loads it
    mro = getattr(found, "__mro__", ())
    return any(f"{cls.__module__}.{cls.__qualname__}" == dotted for cls in mro)
