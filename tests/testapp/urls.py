from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from phoenix_apikeys.metrics import metrics_view

from . import views
from .ninja_api import api as ninja_api
from .ninja_api import bare_api as bare_ninja_api

# A second admin site under its own name: keys must be refused there too.
other_site = admin.AdminSite(name="other-admin")
other_site.register(get_user_model(), UserAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("other-admin/", other_site.urls),
    path("v1/", include("phoenix_apikeys.urls")),
    path("whoami/", views.WhoAmI.as_view()),
    path("ninja/", ninja_api.urls),
    path("metrics", metrics_view),
    path("ninja-bare/", bare_ninja_api.urls),
    path("admin-only/", views.AdminOnly.as_view()),
    path("system-only/", views.SystemKeyOnly.as_view()),
    path("user-only/", views.UserKeyOnly.as_view()),
    path("session-first/system-only/", views.SessionFirstSystemKeyOnly.as_view()),
    path("session-first/human-only/", views.SessionFirstHumanOnly.as_view()),
    path("plain/", views.plain_view),
    path("groups/", views.Groups.as_view()),
    path("plain/permissions/", views.plain_permissions),
    path("plain/groups/", views.plain_add_group),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="tests.testapp.api_urls")),
]
