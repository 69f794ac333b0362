"""The same protected view as /api/hello/, through django-ninja: GET /api/ninja/hello."""

from django.http import HttpRequest
from ninja import NinjaAPI, Schema

from phoenix_apikeys.ninja import APIKeyAuth, handle_refusals

api = handle_refusals(
    NinjaAPI(
        title="phoenix_apikeys example (django-ninja)",
        version="1",
        urls_namespace="ninja",
        auth=APIKeyAuth(),
        docs_url=None,  # ninja's Swagger UI loads from a CDN; /api/docs/ is served locally
    )
)


class HelloOut(Schema):
    message: str
    credential: str  # SystemKey, UserKey or AdminSecret


@api.get("/hello", response=HelloOut)
def hello(request: HttpRequest) -> dict[str, str]:
    return {
        "message": f"Hello, {request.user.get_username()}!",
        "credential": type(request.auth).__name__,  # type: ignore[attr-defined]
    }
