"""The add form of both key admins: name, description, an expiry choice, scopes, restrictions
and a one-time nonce.

The form only collects; the model's rules (the ones ``create_key`` applies) judge, and each of
their errors is shown on the field that collected the value: ``expires_at`` on the expiry
fields, a rule about the owner (never a form field) above the form.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import restrictions, scopes
from ..conf import phoenix_settings
from ..keys import KeyKind
from ..models import MAX_DESCRIPTION_LENGTH
from ..rules import duration_text

if TYPE_CHECKING:  # the form is generic only to the type checker
    ModelForm = forms.ModelForm[Any]
else:
    ModelForm = forms.ModelForm

EXPIRY_PRESET_DAYS = (7, 30, 90)
DEFAULT_EXPIRY_DAYS = 30
NEVER, ON_DATE = "never", "date"
# Nonces of add forms already used in this session; a nonce is not a secret.
USED_NONCES_SESSION_KEY = "phoenix_apikeys_used_nonces"
USED_NONCES_KEPT = 50
# The model's fields (their errors, from the model or the manager) and the form fields that
# collect their values; any other model field's error is shown on its own field, or above.
FORM_FIELDS = {
    "scopes": "permissions",
    "allowed_networks": "networks",
    "rate_limit_requests": "rate_limit",
    "rate_limit_per": "rate_limit",
    "remaining_uses": "uses",
}


ADD_FIELDSETS = (
    (None, {"fields": ("name", "description", "expires_in", "expires_on", "nonce")}),
    (
        _("Scopes"),
        {
            "fields": ("read_only", "permissions"),
            "description": _(
                "A key may do less than its owner. Leave both empty for the owner's whole "
                "authority."
            ),
        },
    ),
    (
        _("Restrictions"),
        {
            "fields": ("networks", "rate_limit", "uses"),
            "description": _("Optional: where from, how often and how many times the key works."),
        },
    ),
)


def expiry_choices(kind: KeyKind) -> list[tuple[str, str]]:
    """Presets within the kind's MAX_KEY_LIFETIME (its DEFAULT_KEY_LIFETIME among them), then
    "never" where the policy allows it, and a chosen date."""
    policy = phoenix_settings.lifetime_policy(kind)
    days = set(EXPIRY_PRESET_DAYS)
    if policy.default is not None and policy.default.days >= 1:
        days.add(policy.default.days)
    choices = [
        (str(count), ngettext("In %(count)d day", "In %(count)d days", count) % {"count": count})
        for count in sorted(days)
        if policy.maximum is None or timedelta(days=count) <= policy.maximum
    ]
    if policy.may_never_expire:
        choices.append((NEVER, gettext("Never")))
    choices.append((ON_DATE, gettext("On a date…")))
    return choices


def default_expiry_choice(kind: KeyKind) -> str:
    values = [value for value, _label in expiry_choices(kind)]
    default = phoenix_settings.lifetime_policy(kind).default
    preferred = str(default.days) if default is not None else str(DEFAULT_EXPIRY_DAYS)
    return preferred if preferred in values else values[0]


def lifetime_help(kind: KeyKind) -> str:
    lifetime = phoenix_settings.lifetime_policy(kind).maximum
    if lifetime is None:
        return gettext("An expired key stops working; it cannot be extended later.")
    return gettext("Keys may live at most %(lifetime)s here (MAX_KEY_LIFETIME).") % {
        "lifetime": duration_text(lifetime)
    }


class RateLimitWidget(forms.MultiWidget):
    """Two small numbers: "[100] requests per [60] seconds"."""

    template_name = "phoenix_apikeys/widgets/rate_limit.html"

    def __init__(self) -> None:
        number = {"min": 1, "class": "vIntegerField"}
        super().__init__(
            [
                forms.NumberInput(attrs={**number, "aria-label": _("Requests")}),
                forms.NumberInput(
                    attrs={
                        **number,
                        "max": restrictions.LONGEST_RATE_WINDOW,
                        "aria-label": _("Seconds"),
                    }
                ),
            ]
        )

    def decompress(self, value: Any) -> list[Any]:
        return [value["requests"], value["per"]] if value else [None, None]


class RateLimitField(forms.MultiValueField):
    """``{"requests": N, "per": seconds}`` or None: both numbers or neither; the model judges
    their values."""

    widget = RateLimitWidget

    def __init__(self, **kwargs: Any) -> None:
        incomplete = _("Give both the number of requests and the seconds, or neither.")
        super().__init__(
            (forms.IntegerField(), forms.IntegerField()),
            require_all_fields=False,
            error_messages={"incomplete": incomplete},
            **kwargs,
        )

    def compress(self, data_list: list[Any]) -> dict[str, int] | None:
        if not data_list:
            return None
        return {"requests": data_list[0], "per": data_list[1]}


class KeyAddForm(ModelForm):
    """Name, description and expiry; the owner is never a form field.

    ``refusal`` is what the manager said of a key this form had accepted: the form shows it
    on its fields when the admin answers with the same form again.
    """

    name = forms.CharField(
        label=_("Name"), max_length=255, help_text=_("What or who will use this key.")
    )
    description = forms.CharField(
        label=_("Description"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=MAX_DESCRIPTION_LENGTH,
    )
    expires_in = forms.ChoiceField(label=_("Expiration"), choices=())
    expires_on = forms.DateField(
        label=_("Expiry date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Only with “On a date…”: the key stops working at 00:00 that day."),
    )
    read_only = forms.BooleanField(
        label=_("Read only"),
        required=False,
        help_text=_("Only GET, HEAD and OPTIONS requests; any other method is refused (403)."),
    )
    permissions = forms.MultipleChoiceField(
        label=_("Permissions"),
        required=False,
        choices=(),
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=_(
            "Narrow the key to these of its owner's permissions (hold Ctrl, or ⌘ on a "
            "Mac, to select more than one); none selected and not read only: the owner's whole "
            "authority. Scopes cannot change later."
        ),
    )
    networks = forms.CharField(
        label=_("Allowed networks"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "192.0.2.0/24\n2001:db8::/32"}),
        help_text=_(
            "One network (CIDR) per line, or comma-separated; a single address is a network of "
            "its own. Requests from anywhere else are refused (403). Empty: any address."
        ),
    )
    rate_limit = RateLimitField(
        label=_("Rate limit"),
        required=False,
        help_text=_(
            "At most this many requests in each window of that many seconds (a day at most); "
            "more are refused (429). Empty: no limit."
        ),
    )
    uses = forms.IntegerField(
        label=_("Remaining uses"),
        required=False,
        min_value=1,
        error_messages={
            "min_value": _("A key needs at least one use; leave it empty for no limit.")
        },
        help_text=_(
            "The key works for this many requests, then is refused (401). Empty: no limit."
        ),
    )
    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)

    refusal: ClassVar[ValidationError | None] = None
    # The permissions the key's owner has, offered as scopes (set per request by the admin).
    owner_permissions: ClassVar[tuple[str, ...]] = ()
    # The kind of key the form makes, for its lifetime policy (set by the admin).
    kind: ClassVar[KeyKind] = KeyKind.USER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        expires_in: Any = self.fields["expires_in"]
        expires_in.choices = expiry_choices(self.kind)
        expires_in.help_text = lifetime_help(self.kind)
        permissions: Any = self.fields["permissions"]
        permissions.choices = [(perm, perm) for perm in self.owner_permissions]
        if not self.owner_permissions:
            permissions.help_text = gettext(
                "The key's owner has no permissions to narrow it to. For a system key, give the "
                "system user permissions in the user admin first."
            )
        # No browser restore on Back: going back to this form starts a new key from scratch.
        for field in self.fields.values():
            field.widget.attrs["autocomplete"] = "off"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "expires_in" in cleaned and "expires_on" in cleaned:
            try:
                # The model judges the expiry when the ModelForm validates the instance.
                self.instance.expires_at = expires_at(cleaned["expires_in"], cleaned["expires_on"])
            except ValidationError as error:
                self.add_error(self.expiry_field(), error)
        read = [scopes.READ] if cleaned.get("read_only") else []
        self.instance.scopes = scopes.join([*read, *cleaned.get("permissions", [])])
        self.restrict(cleaned)
        if self.refusal is not None:
            self.add_error(None, self.refusal)
        return cleaned

    def clean_networks(self) -> list[str]:
        """The networks as the model stores them, or what is wrong with them."""
        given = [text for text in re.split(r"[\s,]+", self.cleaned_data["networks"]) if text]
        networks, errors = restrictions.network_problems(given)
        if errors:
            raise ValidationError(errors)
        return networks

    def restrict(self, cleaned: dict[str, Any]) -> None:
        """The restrictions onto the new key; the model (and ``issue``) judge them."""
        key = self.instance
        if "networks" in cleaned:
            key.allowed_networks = " ".join(cleaned["networks"])
        if "uses" in cleaned:
            key.remaining_uses = cleaned["uses"]
        if "rate_limit" in cleaned:
            try:
                key.rate_limit = cleaned["rate_limit"]
            except ValidationError as error:
                self.add_error(None, error)

    def add_error(self, field: str | None, error: Any) -> None:
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            error = self.onto_form_fields(error)
        super().add_error(field, error)

    def onto_form_fields(self, error: ValidationError) -> ValidationError:
        """The model's errors by model field, moved onto the fields that collected the value;
        a field the form already refused keeps only its own error."""
        by_field: dict[str, list[ValidationError]] = {}
        for model_field, errors in error.error_dict.items():
            field = self.form_field_for(model_field)
            if field == NON_FIELD_ERRORS or field not in self.errors:
                by_field.setdefault(field, []).extend(errors)
        return ValidationError(by_field)

    def form_field_for(self, model_field: str) -> str:
        if model_field == "expires_at":
            return self.expiry_field()
        if model_field in FORM_FIELDS:
            return FORM_FIELDS[model_field]
        return model_field if model_field in self.fields else NON_FIELD_ERRORS

    def expiry_field(self) -> str:
        return "expires_on" if self.cleaned_data.get("expires_in") == ON_DATE else "expires_in"


def expires_at(choice: str, on_date: Any) -> datetime | None:
    """The expiry an expiry choice means; whether it is allowed is the model's to say."""
    if choice != ON_DATE and on_date is not None:
        raise ValidationError(gettext("Choose “On a date…” to use a date, or clear the date."))
    if choice == NEVER:
        return None
    if choice == ON_DATE:
        if on_date is None:
            raise ValidationError(gettext("Pick the date the key stops working."))
        return timezone.make_aware(datetime.combine(on_date, time.min))
    return timezone.now() + timedelta(days=int(choice))


def initial_add_data(kind: KeyKind) -> dict[str, str | list[str]]:
    """A fresh nonce for every add form: one form, one key."""
    return {"nonce": get_random_string(32), "expires_in": default_expiry_choice(kind)}


def nonce_was_used(request: HttpRequest) -> bool:
    nonce = request.POST.get("nonce", "")
    return nonce in request.session.get(USED_NONCES_SESSION_KEY, [])


def record_nonce(request: HttpRequest, nonce: str) -> None:
    used = [*request.session.get(USED_NONCES_SESSION_KEY, []), nonce]
    request.session[USED_NONCES_SESSION_KEY] = used[-USED_NONCES_KEPT:]
