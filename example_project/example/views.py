from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class HelloSerializer(serializers.Serializer[dict[str, str]]):
    message = serializers.CharField()
    credential = serializers.CharField(help_text="SystemKey, UserKey, AdminSecret or session")


class Hello(APIView):
    """A DRF view protected by phoenix_apikeys (the default authentication and IsAuthenticated)."""

    @extend_schema(responses=HelloSerializer)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "message": f"Hello, {request.user.get_username()}!",
                "credential": type(request.auth).__name__ if request.auth else "session",
            }
        )
