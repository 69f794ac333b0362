"""Only the key-management API, mounted as a host mounts it: the OpenAPI schema under test."""

from django.urls import include, path

urlpatterns = [path("v1/", include("phoenix_apikeys.urls"))]
