"""Serializers of the REST API: key objects, the create body and the ``{"data": ...}`` envelopes.

The envelopes render the responses, so the OpenAPI schema is built from what is actually sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..ids import USER_TYPE, global_id, parse_key_id
from ..keys import Credential
from ..models import MAX_DESCRIPTION_LENGTH, AbstractAPIKey
from ..notifications import owner_address
from ..restrictions import LONGEST_RATE_WINDOW, MAX_NETWORKS, MOST_REQUESTS
from ..scopes import MAX_SCOPE_LENGTH, MAX_SCOPES

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
LONGEST_GRACE_SECONDS = 10**12


def credential_name(auth: Any) -> str:
    """How the caller authenticated, as the who-am-I route reports it."""
    credential = getattr(auth, "credential", None)
    if isinstance(credential, Credential):  # our keys and the admin secret
        return credential.value
    # Session and basic auth set no auth object; another class of the host's may set its own.
    return "login" if auth is None else "other"


def envelope(name: str, data: Any, **fields: Any) -> Any:
    """A ``{"data": ...}`` body: a serializer class named ``name`` (the schema's component name,
    less "Serializer"). Made here, not with a class statement, because the type stubs mistake a
    field named "data" for ``Serializer.data``."""
    namespace = {"data": data, **fields, "__module__": __name__}
    return type(name, (serializers.Serializer,), namespace)


class UserSummarySerializer(serializers.Serializer[Any]):
    id = serializers.SerializerMethodField()
    username = serializers.CharField(source="get_username", read_only=True)
    email = serializers.SerializerMethodField()

    def get_id(self, user: Any) -> str:
        return global_id(USER_TYPE, user.pk)

    def get_email(self, user: Any) -> str:
        return owner_address(user)


class CurrentUserSerializer(UserSummarySerializer):
    credential = serializers.SerializerMethodField(
        help_text=_(
            "How the caller authenticated: login, user_key, system_key, admin_secret or "
            "other (an authentication class of the host's)."
        )
    )

    def get_credential(self, user: Any) -> str:
        return credential_name(self.context["request"].auth)


class WholeNumberField(serializers.IntegerField):
    """A JSON integer only: DRF's IntegerField would take "60", 60.0 or true."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class RateLimitSerializer(serializers.Serializer[Any]):
    requests = WholeNumberField(min_value=1, max_value=MOST_REQUESTS)
    per = WholeNumberField(
        min_value=1, max_value=LONGEST_RATE_WINDOW, help_text=_("Seconds, 1 to 86400.")
    )


class StoredTimeField(serializers.DateTimeField):
    """A time stored as ISO 8601 text, shown as every other time (the server's time zone)."""

    def to_representation(self, value: Any) -> Any:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return super().to_representation(value)


class RecentAddressSerializer(serializers.Serializer[Any]):
    address = serializers.CharField()
    at = StoredTimeField()


class KeySerializer(serializers.Serializer[AbstractAPIKey]):
    id = serializers.CharField(
        source="key_id", read_only=True, help_text=_("Opaque id; names the kind of key.")
    )
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    scopes = serializers.ListField(
        source="scope_list",
        child=serializers.CharField(),
        read_only=True,
        help_text=_(
            'What the key may do: empty for its owner\'s whole authority; "read" for '
            'safe methods only; "app_label.codename" permissions.'
        ),
    )

    allowed_networks = serializers.ListField(
        source="network_list",
        child=serializers.CharField(),
        read_only=True,
        help_text=_("CIDRs the key may be used from; empty: anywhere."),
    )
    rate_limit = RateLimitSerializer(read_only=True, allow_null=True)
    remaining_uses = serializers.IntegerField(
        read_only=True, allow_null=True, help_text=_("Uses left; null: unlimited.")
    )
    disabled = serializers.BooleanField(
        read_only=True, help_text=_("Refused until enabled again (POST .../enable).")
    )
    last_used_from = RecentAddressSerializer(
        source="recent_addresses",
        many=True,
        read_only=True,
        help_text=_("The last distinct client addresses, newest first, at most 5."),
    )


class CreatedKeySerializer(KeySerializer):
    key = serializers.SerializerMethodField(help_text=_("The plaintext key: shown this once only."))

    def get_key(self, key: AbstractAPIKey) -> str:
        return str(self.context["plaintext"])


class RotatedKeySerializer(CreatedKeySerializer):
    replaces = serializers.SerializerMethodField(
        help_text=_(
            "The id of the key this one replaces, which keeps working until its grace period ends."
        )
    )

    def get_replaces(self, key: AbstractAPIKey) -> str:
        return str(self.context["replaces"])


class OwnedKeySerializer(KeySerializer):
    user = UserSummarySerializer(read_only=True)


class TextField(serializers.CharField):
    """A JSON string only: DRF's CharField would take 123 or 1e400 as "123" or "inf"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class KeyCreateSerializer(serializers.Serializer[Any]):
    name = TextField(max_length=255)
    description = TextField(
        max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True, default=""
    )
    scopes = serializers.ListField(
        child=TextField(max_length=MAX_SCOPE_LENGTH),
        required=False,
        default=list,
        max_length=MAX_SCOPES,
        help_text=_(
            'Optional: "read" and/or permissions "app_label.codename" the owner has; '
            "fixed once the key is made."
        ),
    )
    # A naive time is read as UTC, whatever the host's TIME_ZONE. The expiry rules are the
    # model's (create_key), so every surface gives the same errors.
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, default_timezone=timezone.utc
    )
    allowed_networks = serializers.ListField(
        child=TextField(max_length=64),
        required=False,
        default=list,
        max_length=MAX_NETWORKS,
        help_text=_("Optional: IPv4/IPv6 CIDRs; a request from elsewhere is 403."),
    )
    rate_limit = RateLimitSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Optional: past it, 429 with Retry-After and RateLimit-* headers."),
    )
    remaining_uses = WholeNumberField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**63 - 1,
        help_text=_("Optional: each authenticated request spends one; at 0 the key is 401."),
    )


class KeyRotateSerializer(serializers.Serializer[Any]):
    grace_period = WholeNumberField(
        required=False,
        min_value=0,
        help_text=_(
            "Seconds the replaced key keeps working; 0 revokes it now. Default: "
            "ROTATION_GRACE_PERIOD (24 hours); at most MAX_ROTATION_GRACE_PERIOD (30 days)."
        ),
    )
    # Absent: the old key's lifetime counted from now; null: never. The model's expiry rules.
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default_timezone=timezone.utc
    )

    def validate_grace_period(self, seconds: int) -> timedelta:
        # Far past any MAX_ROTATION_GRACE_PERIOD, so the model names the limit; never overflows.
        return timedelta(seconds=min(seconds, LONGEST_GRACE_SECONDS))


KeyCreateRequestSerializer = envelope("KeyCreateRequestSerializer", KeyCreateSerializer())
KeyRotateRequestSerializer = envelope(
    "KeyRotateRequestSerializer", KeyRotateSerializer(required=False)
)


# A leak report: at most this many keys, each at most this long (a key is 43 characters with
# the default prefixes; longer text is no key of ours, but the limit leaves room for prefixes).
MAX_LEAKED_KEYS = 100
MAX_LEAKED_KEY_LENGTH = 255


class LeakedKeysSerializer(serializers.Serializer[Any]):
    keys = serializers.ListField(
        child=TextField(max_length=MAX_LEAKED_KEY_LENGTH, allow_blank=True, trim_whitespace=False),
        max_length=MAX_LEAKED_KEYS,
        help_text=_(
            "Plaintext keys found where they should not be, at most 100. Text that is no "
            "live key of this deployment is ignored without a word."
        ),
    )


LeakReportRequestSerializer = envelope("LeakReportRequestSerializer", LeakedKeysSerializer())


class LeakReceiptSerializer(serializers.Serializer[Any]):
    received = serializers.IntegerField(
        help_text=_("How many keys the request listed: the same whatever was found.")
    )


LeakReceiptEnvelopeSerializer = envelope("LeakReceiptEnvelopeSerializer", LeakReceiptSerializer())


class PageQuerySerializer(serializers.Serializer[Any]):
    """``limit`` and ``cursor`` of a list route; the cursor is an id of the kind listed
    (``context["kind"]``)."""

    limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text=_("Page size, 1 to 1000."),
    )
    cursor = serializers.CharField(
        required=False, max_length=64, help_text=_("The next_cursor of the previous page.")
    )

    def validate_cursor(self, value: str) -> int:
        parsed = parse_key_id(value, self.context["kind"])
        if parsed is None:
            raise serializers.ValidationError(gettext("Not a cursor from this API."))
        return parsed[1]


def next_cursor() -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=_("null on the last page."))


CurrentUserEnvelopeSerializer = envelope("CurrentUserEnvelopeSerializer", CurrentUserSerializer())
KeyListEnvelopeSerializer = envelope(
    "KeyListEnvelopeSerializer", KeySerializer(many=True), next_cursor=next_cursor()
)
KeyEnvelopeSerializer = envelope("KeyEnvelopeSerializer", KeySerializer())
CreatedKeyEnvelopeSerializer = envelope("CreatedKeyEnvelopeSerializer", CreatedKeySerializer())
RotatedKeyEnvelopeSerializer = envelope("RotatedKeyEnvelopeSerializer", RotatedKeySerializer())
InventoryEnvelopeSerializer = envelope(
    "InventoryEnvelopeSerializer", OwnedKeySerializer(many=True), next_cursor=next_cursor()
)


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()


class RouteSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    methods = serializers.ListField(child=serializers.CharField())


class RouteIndexSerializer(serializers.Serializer[Any]):
    routes = RouteSerializer(many=True)


RouteIndexEnvelopeSerializer = envelope("RouteIndexEnvelopeSerializer", RouteIndexSerializer())
