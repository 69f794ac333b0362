from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from phoenix_apikeys.permissions import IsAdminOrAdminSecret, IsSystemKey, IsUserKey


class WhoAmI(APIView):
    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username(), "auth": str(request.auth)})


class AdminOnly(WhoAmI):
    permission_classes = [IsAdminOrAdminSecret]


class SystemKeyOnly(WhoAmI):
    permission_classes = [IsSystemKey]


class UserKeyOnly(WhoAmI):
    permission_classes = [IsUserKey]


def plain_view(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "anonymous"}, status=403)
    return JsonResponse({"username": request.user.get_username()})
