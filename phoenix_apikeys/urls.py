"""The Phoenix-compatible key-management REST API; mount with path("v1/", include(...))."""

from django.urls import URLPattern

app_name = "phoenix_apikeys"
urlpatterns: list[URLPattern] = []
