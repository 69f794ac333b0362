"""A django-ninja API protected by phoenix_apikeys: sync and async operations."""

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI

from phoenix_apikeys.ninja import APIKeyAuth, AsyncAPIKeyAuth, handle_refusals

api = handle_refusals(NinjaAPI(urls_namespace="ninja-tests", auth=APIKeyAuth()))
# Refusals answered with ninja's own handlers only: status and detail, no headers.
bare_api = NinjaAPI(urls_namespace="ninja-bare", auth=APIKeyAuth())


def whoami(request: HttpRequest) -> dict[str, Any]:
    return {
        "username": request.user.get_username(),
        "credential": type(request.auth).__name__,  # type: ignore[attr-defined]
    }


api.api_operation(["GET", "POST"], "/hello")(whoami)
bare_api.get("/hello")(whoami)


@api.api_operation(["GET", "POST"], "/async-hello", auth=AsyncAPIKeyAuth())
async def async_whoami(request: HttpRequest) -> dict[str, Any]:
    return whoami(request)
