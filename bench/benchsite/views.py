"""The same trivial DRF view behind each authentication scheme, and the hand-made floors.

The floors are what the unavoidable step alone costs, so a scheme's overhead can be judged
against them in the same run:

- ``RejectAll``: DRF's own 401 path, with no parsing at all (the floor of a malformed key);
- ``FloorSQL``: split the header, HMAC the key, one hand-written SQL join and two models built
  with ``from_db`` (the floor of a valid key, cache off);
- ``FloorCache`` / ``FloorRedis``: split the header, HMAC the key, one get from the local-memory
  or Redis cache (the floor of a shared cache's hit);
- ``FloorMemory``: split the header, HMAC the key, one lookup in a dict of this process (the
  floor of a valid key held in the process's memory, the coherent cache's warm path).
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connections, router
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from phoenix_apikeys.authentication import APIKeyAuthentication
from phoenix_apikeys.keys import digest
from phoenix_apikeys.models import UserKey


def _digest(request: Any) -> str:
    # META from Django's request under DRF's (DRF's proxy costs a failed attribute lookup), and
    # the key's HMAC as phoenix_apikeys computes it.
    header = request._request.META.get("HTTP_AUTHORIZATION", "")
    keyword, _, key = header.partition(" ")
    if keyword != "Bearer" or not key:
        raise exceptions.AuthenticationFailed("Invalid API key.")
    return digest(key, settings.PHOENIX_SECRET)


class RejectAll(BaseAuthentication):
    def authenticate(self, request: Any) -> None:
        raise exceptions.AuthenticationFailed("Invalid API key.")

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


@functools.cache
def _floor_query() -> tuple[str, list[str], list[str]]:
    user_model = get_user_model()
    key_fields = [f.attname for f in UserKey._meta.concrete_fields]
    user_fields = [f.attname for f in user_model._meta.concrete_fields]
    columns = [f"k.{f.column}" for f in UserKey._meta.concrete_fields]
    columns += [f"u.{f.column}" for f in user_model._meta.concrete_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {UserKey._meta.db_table} k "
        f"JOIN {user_model._meta.db_table} u ON u.id = k.user_id WHERE k.digest = %s"
    )
    return sql, key_fields, user_fields


class FloorSQL(RejectAll):
    def authenticate(self, request: Any) -> Any:
        sql, key_fields, user_fields = _floor_query()
        alias = router.db_for_read(UserKey)
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [_digest(request)])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = UserKey.from_db(alias, key_fields, row[: len(key_fields)])
        user = get_user_model().from_db(alias, user_fields, row[len(key_fields) :])
        key._state.fields_cache["user"] = user
        return user, key


class FloorCache(RejectAll):
    alias = "locmem"

    def authenticate(self, request: Any) -> Any:
        key = caches[self.alias].get("floor:" + _digest(request))
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return key.user, key


class FloorRedis(FloorCache):
    alias = "redis"


_remembered: dict[str, Any] = {}


class FloorMemory(FloorSQL):
    """The physical limit of a warm check: one HMAC and a lookup in this process's memory (a
    miss asks the database once, as FloorSQL)."""

    def authenticate(self, request: Any) -> Any:
        found = _remembered.get(_digest(request))
        if found is None:
            found = _remembered[_digest(request)] = super().authenticate(request)
        return found


class Hello(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = [AllowAny]

    def get(self, request: Any) -> Response:
        return Response({"hello": "world"})


def protected(*authentication: type, permission: type = IsAuthenticated) -> Any:
    return type(
        "Protected",
        (Hello,),
        {"authentication_classes": list(authentication), "permission_classes": [permission]},
    ).as_view()


VIEWS = {
    "none": Hello.as_view(),
    "floor_401": protected(RejectAll),
    "floor_sql": protected(FloorSQL),
    "floor_cache": protected(FloorCache),
    "floor_redis": protected(FloorRedis),
    "floor_memory": protected(FloorMemory),
    "drf_token": protected(TokenAuthentication),
    "knox": protected(KnoxTokenAuthentication),
    "api_key": protected(permission=HasAPIKey),
    "phoenix": protected(APIKeyAuthentication),
}
