from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from .views import VIEWS


def by_scheme(request: HttpRequest, scheme: str) -> HttpResponse:
    """One route for every case, so URL resolution costs each scheme the same (with a route
    each, the last listed paid a few more pattern matches than the first)."""
    view: Any = VIEWS.get(scheme)
    if view is None:
        raise Http404(scheme)
    response: HttpResponse = view(request)
    return response


urlpatterns = [path("<slug:scheme>/", by_scheme)]
