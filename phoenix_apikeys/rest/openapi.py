"""drf-spectacular support: describes APIKeyAuthentication as a Bearer security scheme.

Imported by ``apps.ready`` only when drf-spectacular (the [openapi] extra) is installed;
defining the extension registers it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from ..conf import phoenix_settings


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "phoenix_apikeys.authentication.APIKeyAuthentication"
    name = "PhoenixAPIKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION",
            token_prefix=phoenix_settings.AUTH_HEADER_KEYWORD,
            bearer_format="system key, user key or admin secret",
        )
        return scheme
