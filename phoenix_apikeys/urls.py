"""The Phoenix-compatible key-management REST API; mount with path("v1/", include(...))."""

from django.urls import URLPattern, path, register_converter

from . import api


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
    path("user", api.CurrentUserView.as_view(), name="current-user"),
    path("api_keys/revoke", api.LeakRevocationView.as_view(), name="leak-revocation"),
    path("user/api_keys", api.UserKeysView.as_view(), name="user-api-keys"),
    # Before the routes they extend: an id may contain "/", so those would take these paths.
    path(
        "user/api_keys/<phoenix_apikeys_id:id>/rotate",
        api.UserKeyRotationView.as_view(),
        name="user-api-key-rotation",
    ),
    path("user/api_keys/<phoenix_apikeys_id:id>", api.UserKeyView.as_view(), name="user-api-key"),
    path("users/api_keys", api.UserKeyInventoryView.as_view(), name="all-user-api-keys"),
    path("system/api_keys", api.SystemKeysView.as_view(), name="system-api-keys"),
    path(
        "system/api_keys/<phoenix_apikeys_id:id>/rotate",
        api.SystemKeyRotationView.as_view(),
        name="system-api-key-rotation",
    ),
    path(
        "system/api_keys/<phoenix_apikeys_id:id>",
        api.SystemKeyView.as_view(),
        name="system-api-key",
    ),
]
