"""The Phoenix-compatible key-management REST API; mount with path("v1/", include(...))."""

from django.urls import URLPattern, path

from . import api

app_name = "phoenix_apikeys"
urlpatterns: list[URLPattern] = [
    path("user", api.CurrentUserView.as_view(), name="current-user"),
    path("user/api_keys", api.UserKeysView.as_view(), name="user-api-keys"),
    path("user/api_keys/<str:id>", api.UserKeyView.as_view(), name="user-api-key"),
    path("users/api_keys", api.UserKeyInventoryView.as_view(), name="all-user-api-keys"),
    path("system/api_keys", api.SystemKeysView.as_view(), name="system-api-keys"),
    path("system/api_keys/<str:id>", api.SystemKeyView.as_view(), name="system-api-key"),
]
