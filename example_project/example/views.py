from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Hello(APIView):
    """A DRF view protected by phoenix_apikeys (the default authentication and IsAuthenticated)."""

    def get(self, request: Request) -> Response:
        return Response(
            {
                "message": f"Hello, {request.user.get_username()}!",
                "credential": type(request.auth).__name__ if request.auth else "session",
            }
        )
