"""The Phoenix-compatible key-management REST API; mount with path("v1/", include(...))."""

from django.urls import URLPattern, path, register_converter
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .rest.base import UNAUTHENTICATED, KeyAPIView, document
from .rest.leaks import LeakRevocationView
from .rest.serializers import RouteIndexEnvelopeSerializer
from .rest.views import (
    CurrentUserView,
    SystemKeyDisableView,
    SystemKeyEnableView,
    SystemKeyRotationView,
    SystemKeysView,
    SystemKeyView,
    UserKeyDisableView,
    UserKeyEnableView,
    UserKeyInventoryView,
    UserKeyRotationView,
    UserKeysView,
    UserKeyView,
)

# The routes below the mount point and their methods, as the index lists them.
ROUTES = [
    ("user", ["GET"]),
    ("user/api_keys", ["GET", "POST"]),
    ("user/api_keys/{id}", ["DELETE"]),
    ("user/api_keys/{id}/rotate", ["POST"]),
    ("user/api_keys/{id}/disable", ["POST"]),
    ("user/api_keys/{id}/enable", ["POST"]),
    ("users/api_keys", ["GET"]),
    ("system/api_keys", ["GET", "POST"]),
    ("system/api_keys/{id}", ["DELETE"]),
    ("system/api_keys/{id}/rotate", ["POST"]),
    ("system/api_keys/{id}/disable", ["POST"]),
    ("system/api_keys/{id}/enable", ["POST"]),
    ("api_keys/revoke", ["POST"]),
]


class RouteIndexView(KeyAPIView):
    """The mount point itself (``GET v1/``): the routes below it, open to anyone."""

    permissions_by_method = {"GET": [AllowAny]}

    @document(
        "listRoutes",
        _("The routes of this API"),
        responses={200: RouteIndexEnvelopeSerializer, **UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        base = request.path if request.path.endswith("/") else request.path + "/"
        routes = [{"path": base + route, "methods": methods} for route, methods in ROUTES]
        return Response(RouteIndexEnvelopeSerializer({"data": {"routes": routes}}).data)


class OpaqueIdConverter:
    """Any text, even empty or with "/" or a newline, so a bad id still gets the API's JSON 404."""

    regex = r"[\s\S]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(OpaqueIdConverter, "phoenix_apikeys_id")

app_name = "phoenix_apikeys"
urlpatterns: list[URLPattern] = [
    path("", RouteIndexView.as_view(), name="index"),
    path("user", CurrentUserView.as_view(), name="current-user"),
    path("api_keys/revoke", LeakRevocationView.as_view(), name="leak-revocation"),
    path("user/api_keys", UserKeysView.as_view(), name="user-api-keys"),
    # Before the routes they extend: an id may contain "/", so those would take these paths.
    path(
        "user/api_keys/<phoenix_apikeys_id:id>/rotate",
        UserKeyRotationView.as_view(),
        name="user-api-key-rotation",
    ),
    *[
        path(
            f"{kind}/api_keys/<phoenix_apikeys_id:id>/{action}",
            view.as_view(),
            name=f"{kind}-api-key-{action}",
        )
        for kind, action, view in (
            ("user", "disable", UserKeyDisableView),
            ("user", "enable", UserKeyEnableView),
            ("system", "disable", SystemKeyDisableView),
            ("system", "enable", SystemKeyEnableView),
        )
    ],
    path("user/api_keys/<phoenix_apikeys_id:id>", UserKeyView.as_view(), name="user-api-key"),
    path("users/api_keys", UserKeyInventoryView.as_view(), name="all-user-api-keys"),
    path("system/api_keys", SystemKeysView.as_view(), name="system-api-keys"),
    path(
        "system/api_keys/<phoenix_apikeys_id:id>/rotate",
        SystemKeyRotationView.as_view(),
        name="system-api-key-rotation",
    ),
    path(
        "system/api_keys/<phoenix_apikeys_id:id>",
        SystemKeyView.as_view(),
        name="system-api-key",
    ),
]
