from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .ninja_api import api as ninja_api
from .views import Hello

urlpatterns = [
    path("", TemplateView.as_view(template_name="example/home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("v1/", include("phoenix_apikeys.urls")),
    path("api/hello/", Hello.as_view(), name="hello"),
    path("api/ninja/", ninja_api.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

try:  # the [prometheus] extra
    from phoenix_apikeys.metrics import metrics_view
except ImportError:
    pass
else:
    urlpatterns.append(path("metrics", metrics_view, name="metrics"))
