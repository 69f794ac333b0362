from django.contrib import admin
from django.urls import include, path

from .views import Hello

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include("phoenix_apikeys.urls")),
    path("api/hello/", Hello.as_view(), name="hello"),
]
