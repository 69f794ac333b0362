"""URLconf of bench/inventory.py (benchsite.inventory_settings): the admin and the key API."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("v1/", include("phoenix_apikeys.urls"))]
