from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import Group
from django.http import HttpRequest, JsonResponse
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from phoenix_apikeys.authentication import APIKeyAuthentication
from phoenix_apikeys.permissions import (
    IsAdminOrAdminSecret,
    IsHumanLogin,
    IsSystemKey,
    IsUserKey,
)


class WhoAmI(APIView):
    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username(), "auth": str(request.auth)})


class AdminOnly(WhoAmI):
    permission_classes = [IsAdminOrAdminSecret]


class SystemKeyOnly(WhoAmI):
    permission_classes = [IsSystemKey]


class UserKeyOnly(WhoAmI):
    permission_classes = [IsUserKey]


class SessionFirstSystemKeyOnly(WhoAmI):
    """Session authentication listed before ours, as some projects have it."""

    authentication_classes = [SessionAuthentication, APIKeyAuthentication]
    permission_classes = [IsSystemKey]


class SessionFirstHumanOnly(SessionFirstSystemKeyOnly):
    permission_classes = [IsHumanLogin]


def plain_view(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "anonymous"}, status=403)
    return JsonResponse({"username": request.user.get_username()})


class ModelPermissionsWithView(DjangoModelPermissions):
    """DRF's model permissions, with view_<model> asked for reads too (DRF asks for none)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class Groups(APIView):
    """A host view narrowed by Django's model permissions: view_group to list, add_group to add."""

    queryset = Group.objects.all()
    permission_classes = [ModelPermissionsWithView]

    def get(self, request: Request) -> Response:
        return Response(sorted(Group.objects.values_list("name", flat=True)))

    def post(self, request: Request) -> Response:
        group = Group.objects.create(name=str(request.data.get("name", "")))
        return Response({"name": group.name}, status=201)


def plain_permissions(request: HttpRequest) -> JsonResponse:
    """What a plain Django view sees of the caller's authority, through the middleware."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "anonymous"}, status=403)
    user = request.user
    return JsonResponse(
        {
            "is_superuser": bool(user.is_superuser),
            "is_staff": bool(user.is_staff),
            "permissions": sorted(user.get_all_permissions()),
            "can_add_group": user.has_perm("auth.add_group"),
        }
    )


@permission_required("auth.add_group", raise_exception=True)
def plain_add_group(request: HttpRequest) -> JsonResponse:
    group = Group.objects.create(name=request.POST.get("name", "plain"))
    return JsonResponse({"name": group.name}, status=201)
