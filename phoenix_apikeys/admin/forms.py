"""The add form of both key admins: name, description, an expiry choice and a one-time nonce.

The form only collects; the model's rules (the ones ``create_key`` applies) judge, and each of
their errors is shown on the field that collected the value: ``expires_at`` on the expiry
fields, a rule about the owner (never a form field) above the form.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import get_random_string

from .. import scopes
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


def expiry_choices(kind: KeyKind) -> list[tuple[str, str]]:
    """Presets within the kind's MAX_KEY_LIFETIME (its DEFAULT_KEY_LIFETIME among them), then
    "never" where the policy allows it, and a chosen date."""
    policy = phoenix_settings.lifetime_policy(kind)
    days = set(EXPIRY_PRESET_DAYS)
    if policy.default is not None and policy.default.days >= 1:
        days.add(policy.default.days)
    choices = [
        (str(count), f"In {count} days")
        for count in sorted(days)
        if policy.maximum is None or timedelta(days=count) <= policy.maximum
    ]
    if policy.may_never_expire:
        choices.append((NEVER, "Never"))
    choices.append((ON_DATE, "On a date…"))
    return choices


def default_expiry_choice(kind: KeyKind) -> str:
    values = [value for value, _label in expiry_choices(kind)]
    default = phoenix_settings.lifetime_policy(kind).default
    preferred = str(default.days) if default is not None else str(DEFAULT_EXPIRY_DAYS)
    return preferred if preferred in values else values[0]


def lifetime_help(kind: KeyKind) -> str:
    lifetime = phoenix_settings.lifetime_policy(kind).maximum
    if lifetime is None:
        return "An expired key stops working; it cannot be extended later."
    return f"Keys may live at most {duration_text(lifetime)} here (MAX_KEY_LIFETIME)."


class KeyAddForm(ModelForm):
    """Name, description and expiry; the owner is never a form field.

    ``refusal`` is what the manager said of a key this form had accepted: the form shows it
    on its fields when the admin answers with the same form again.
    """

    name = forms.CharField(max_length=255, help_text="What or who will use this key.")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=MAX_DESCRIPTION_LENGTH,
    )
    expires_in = forms.ChoiceField(label="Expiration", choices=())
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only with “On a date…”: the key stops working at 00:00 that day.",
    )
    read_only = forms.BooleanField(
        label="Read only",
        required=False,
        help_text="Only GET, HEAD and OPTIONS requests; any other method is refused (403).",
    )
    permissions = forms.MultipleChoiceField(
        required=False,
        choices=(),
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="Narrow the key to these of its owner's permissions (hold Ctrl, or ⌘ on a "
        "Mac, to select more than one); none selected and not read only: the owner's whole "
        "authority. Scopes cannot change later.",
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
            permissions.help_text = (
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
        if self.refusal is not None:
            self.add_error(None, self.refusal)
        return cleaned

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
        if model_field == "scopes":
            return "permissions"
        return model_field if model_field in self.fields else NON_FIELD_ERRORS

    def expiry_field(self) -> str:
        return "expires_on" if self.cleaned_data.get("expires_in") == ON_DATE else "expires_in"


def expires_at(choice: str, on_date: Any) -> datetime | None:
    """The expiry an expiry choice means; whether it is allowed is the model's to say."""
    if choice != ON_DATE and on_date is not None:
        raise ValidationError("Choose “On a date…” to use a date, or clear the date.")
    if choice == NEVER:
        return None
    if choice == ON_DATE:
        if on_date is None:
            raise ValidationError("Pick the date the key stops working.")
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
