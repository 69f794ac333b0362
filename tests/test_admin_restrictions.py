"""Restrictions in the admin: the add form's networks, rate limit and remaining uses, the key
page's restrictions section, and disabling and enabling from the list and the key's page."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from phoenix_apikeys.models import KeyEvent, KeyStatus, SystemKey, UserKey
from phoenix_apikeys.restrictions import AddressNotAllowed
from phoenix_apikeys.verification import CredentialRejected, verify_credential

from .factories import StaffFactory, SuperuserFactory, SystemKeyFactory, UserKeyFactory
from .test_admin import (
    SYSTEM_ADD,
    SYSTEM_LIST,
    USER_ADD,
    USER_LIST,
    add_key,
    grant,
    logged_in,
    shown_key,
)
from .testapp.caches import FlakyCache

pytestmark = pytest.mark.django_db


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200
    return dict(response.context["adminform"].form.errors)


def accepted(plaintext: str, source: str = "192.0.2.10") -> bool:
    try:
        verify_credential(plaintext, source)
    except CredentialRejected:
        return False
    return True


# The add form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("10.0.0.0/8, not-a-network", '"not-a-network" is not an IPv4 or IPv6 network (CIDR).'),
        ("10.0.0.1/24", '"10.0.0.1/24" has host bits set; did you mean 10.0.0.0/24?'),
        ("2001:db8::1/32", '"2001:db8::1/32" has host bits set; did you mean 2001:db8::/32?'),
    ],
)
def test_a_bad_network_is_refused_on_its_field(given: str, error: str) -> None:
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, networks=given)
    assert form_errors(response) == {"networks": [error]}
    assert not SystemKey.objects.exists()


@pytest.mark.parametrize("half", [("100", ""), ("", "60")], ids=["requests only", "per only"])
def test_half_a_rate_limit_is_refused(half: tuple[str, str]) -> None:
    requests, per = half
    response = add_key(
        logged_in(SuperuserFactory()), SYSTEM_ADD, rate_limit_0=requests, rate_limit_1=per
    )
    assert form_errors(response) == {
        "rate_limit": ["Give both the number of requests and the seconds, or neither."]
    }
    assert not SystemKey.objects.exists()


@pytest.mark.parametrize("values", [("0", "60"), ("10", "0"), ("10", "86401")])
def test_the_models_rate_limit_rule_shows_on_the_rate_limit(values: tuple[str, str]) -> None:
    response = add_key(
        logged_in(SuperuserFactory()), SYSTEM_ADD, rate_limit_0=values[0], rate_limit_1=values[1]
    )
    (error,) = form_errors(response)["rate_limit"]
    assert error.startswith("A rate limit's requests must be from 1 to")
    assert not SystemKey.objects.exists()


@pytest.mark.parametrize("uses", ["0", "-3"])
def test_remaining_uses_must_be_at_least_one(uses: str) -> None:
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, uses=uses)
    assert form_errors(response) == {
        "uses": ["A key needs at least one use; leave it empty for no limit."]
    }
    assert not SystemKey.objects.exists()


def test_values_only_the_database_cannot_hold_land_on_their_fields() -> None:
    """The model's field limits are judged when the manager issues the key (the form leaves
    those fields to it): its refusal comes back on the fields that collected the values."""
    client = logged_in(SuperuserFactory())
    response = add_key(client, SYSTEM_ADD, uses=str(2**63), rate_limit_0="100", rate_limit_1="60")
    assert set(form_errors(response)) == {"uses"}
    response = add_key(client, SYSTEM_ADD, rate_limit_0=str(2**31), rate_limit_1="60")
    assert set(form_errors(response)) == {"rate_limit"}
    assert not SystemKey.objects.exists()


@pytest.mark.parametrize(("add_url", "model"), [(SYSTEM_ADD, SystemKey), (USER_ADD, UserKey)])
def test_the_created_key_carries_its_restrictions(add_url: str, model: Any) -> None:
    client = logged_in(SuperuserFactory())
    response = add_key(
        client,
        add_url,
        networks="10.0.0.0/8, 192.0.2.10\r\n2001:DB8::/32\r\n10.0.0.0/8",
        rate_limit_0="100",
        rate_limit_1="60",
        uses="5",
    )
    plaintext = shown_key(response)
    key = model.objects.get()
    assert key.network_list == ["10.0.0.0/8", "192.0.2.10/32", "2001:db8::/32"]
    assert key.rate_limit == {"requests": 100, "per": 60}
    assert key.remaining_uses == 5
    assert accepted(plaintext, "10.1.2.3")
    with pytest.raises(AddressNotAllowed):
        verify_credential(plaintext, "198.51.100.7")
    assert model.objects.get().remaining_uses == 4  # the refused request spent none


def test_a_key_made_without_restrictions_has_none() -> None:
    add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, networks="", rate_limit_0="", uses="")
    key = SystemKey.objects.get()
    assert (key.allowed_networks, key.rate_limit, key.remaining_uses) == ("", None, None)
    assert not key.is_restricted


def test_the_add_form_offers_the_restrictions() -> None:
    page = logged_in(StaffFactory()).get(USER_ADD).content.decode()
    assert '<textarea name="networks"' in page
    assert 'name="rate_limit_0"' in page and 'name="rate_limit_1"' in page
    assert "requests per" in page
    assert 'name="uses"' in page


# The key's page -------------------------------------------------------------------------------


def test_the_key_page_shows_restrictions_and_where_it_was_last_used_from() -> None:
    key = SystemKeyFactory(
        allowed_networks=["10.0.0.0/8", "2001:db8::/32"],
        rate_limit={"requests": 100, "per": 60},
        remaining_uses=5,
    )
    assert accepted(key.plaintext, "10.0.0.7")
    SystemKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(days=1))
    key.refresh_from_db()
    key.record_use(timezone.now(), ipaddress.ip_address("2001:db8::5"))
    page = logged_in(SuperuserFactory()).get(f"{SYSTEM_LIST}{key.pk}/change/").content.decode()
    assert ">Restrictions</h2>" in page
    assert "<code>10.0.0.0/8</code><br><code>2001:db8::/32</code>" in page
    assert "100 requests per 1 minute." in page
    assert "4 uses left." in page
    assert "<code>2001:db8::5</code>" in page and "<code>10.0.0.7</code>" in page
    assert page.index("2001:db8::5") < page.index("10.0.0.7")  # newest first
    assert 'class="phoenix-date"' in page.split("<code>10.0.0.7</code>", 1)[1][:80]
    assert "Disable key" in page and "Enable key" not in page


def test_an_unrestricted_key_page_says_so() -> None:
    key = SystemKeyFactory()
    page = logged_in(SuperuserFactory()).get(f"{SYSTEM_LIST}{key.pk}/change/").content.decode()
    for text in ("Any address.", "None.", "Unlimited.", "No.", "No address recorded yet."):
        assert text in page


def test_the_key_pages_form_still_edits_only_name_and_description() -> None:
    key = SystemKeyFactory(remaining_uses=3)
    page = logged_in(SuperuserFactory()).get(f"{SYSTEM_LIST}{key.pk}/change/")
    assert set(page.context["adminform"].form.fields) == {"name", "description"}


# The status filter ----------------------------------------------------------------------------


def test_disabled_keys_are_listed_and_filtered_as_such() -> None:
    paused, working = SystemKeyFactory(), SystemKeyFactory()
    SystemKey.objects.disable(paused)
    client = logged_in(SuperuserFactory())
    page = client.get(SYSTEM_LIST, {"status": KeyStatus.DISABLED.value})
    assert list(page.context["cl"].result_list) == [paused]
    listed = client.get(SYSTEM_LIST).content.decode()
    assert '<span class="phoenix-key-status disabled">disabled</span>' in listed
    assert "?status=disabled" in listed  # the filter offers it
    assert client.get(SYSTEM_LIST, {"status": "active"}).context["cl"].result_list[0] == working


# Disable and enable ---------------------------------------------------------------------------


def act(client: Any, url: str, action: str, keys: list[Any]) -> Any:
    return client.post(url, {"action": action, "_selected_action": [key.pk for key in keys]})


def disabled(*keys: Any) -> list[bool]:
    return [type(key).objects.get(pk=key.pk).disabled for key in keys]


def test_the_actions_disable_and_enable_the_selected_keys() -> None:
    admin = SuperuserFactory()
    keys, kept = [SystemKeyFactory(), SystemKeyFactory()], SystemKeyFactory()
    client = logged_in(admin)
    response = act(client, SYSTEM_LIST, "disable_selected", keys)
    assert response.status_code == 302
    assert disabled(*keys, kept) == [True, True, False]
    assert [accepted(key.plaintext) for key in (*keys, kept)] == [False, False, True]
    events = KeyEvent.objects.filter(action="disabled")
    assert sorted(event.key_id for event in events) == sorted(key.key_id for key in keys)
    assert {event.actor_id for event in events} == {admin.pk}
    messages = [str(m) for m in client.get(SYSTEM_LIST).context["messages"]]
    assert messages == ["2 keys disabled: requests with them are refused until they are enabled."]

    act(client, SYSTEM_LIST, "enable_selected", [keys[0], kept])
    assert disabled(*keys, kept) == [False, True, False]
    assert accepted(keys[0].plaintext) and not accepted(keys[1].plaintext)
    assert KeyEvent.objects.filter(action="enabled").count() == 1
    messages = [str(m) for m in client.get(SYSTEM_LIST).context["messages"]]
    assert messages == ["1 key enabled. 1 already was."]


def test_the_key_pages_button_disables_and_enables_the_key() -> None:
    staff = StaffFactory()
    key = UserKeyFactory(user=staff)
    client = logged_in(staff)
    url = f"{USER_LIST}{key.pk}/change/"
    response = client.post(f"{USER_LIST}{key.pk}/state/", {"state": "disable"})
    assert response.status_code == 302 and response["Location"] == url
    assert disabled(key) == [True] and not accepted(key.plaintext)
    page = client.get(url).content.decode()
    assert "Enable key" in page and "Disable key" not in page
    assert "This key is disabled" in page
    assert "Yes: every request with this key is refused until it is enabled." in page
    assert '<span class="phoenix-key-status disabled">disabled</span>' in page

    client.post(f"{USER_LIST}{key.pk}/state/", {"state": "enable"})
    assert disabled(key) == [False] and accepted(key.plaintext)
    actions = list(KeyEvent.objects.order_by("pk").values_list("action", "actor"))
    assert actions[-2:] == [("disabled", staff.pk), ("enabled", staff.pk)]


def test_the_button_posts_only() -> None:
    key = SystemKeyFactory()
    client = logged_in(SuperuserFactory())
    assert client.get(f"{SYSTEM_LIST}{key.pk}/state/").status_code == 405
    assert client.post(f"{SYSTEM_LIST}{key.pk}/state/", {"state": "maybe"}).status_code == 400
    assert disabled(key) == [False]


def test_disabling_takes_the_authority_of_revocation_on_system_keys() -> None:
    viewer = grant(StaffFactory(), "view_systemkey", "add_systemkey")  # may rotate, not revoke
    key = SystemKeyFactory()
    client = logged_in(viewer)
    page = client.get(f"{SYSTEM_LIST}{key.pk}/change/")
    assert "Disable key" not in page.content.decode()
    choices = client.get(SYSTEM_LIST).context["action_form"].fields["action"].choices
    offered = [name for name, _label in choices]
    assert "rotate_selected" in offered
    assert "disable_selected" not in offered and "enable_selected" not in offered
    act(client, SYSTEM_LIST, "disable_selected", [key])
    assert client.post(f"{SYSTEM_LIST}{key.pk}/state/", {"state": "disable"}).status_code == 403
    assert disabled(key) == [False]
    assert not KeyEvent.objects.filter(action="disabled").exists()

    revoker = grant(StaffFactory(), "view_systemkey", "delete_systemkey")
    logged_in(revoker).post(f"{SYSTEM_LIST}{key.pk}/state/", {"state": "disable"})
    assert disabled(key) == [True]


def test_staff_cannot_disable_another_users_key() -> None:
    other = UserKeyFactory()
    client = logged_in(StaffFactory())
    response = client.post(f"{USER_LIST}{other.pk}/state/", {"state": "disable"})
    assert response.status_code == 302 and response["Location"] == USER_LIST
    act(client, USER_LIST, "disable_selected", [other])
    assert disabled(other) == [False]
    assert accepted(other.plaintext)


def test_who_revokes_every_users_keys_disables_them_too() -> None:
    auditor = grant(StaffFactory(), "view_all_userkeys")
    other = UserKeyFactory()
    client = logged_in(auditor)
    assert "Disable key" in client.get(f"{USER_LIST}{other.pk}/change/").content.decode()
    act(client, USER_LIST, "disable_selected", [other])
    assert disabled(other) == [True]


def test_an_unreachable_cache_changes_nothing_and_says_so(flaky: type[FlakyCache]) -> None:
    keys = [SystemKeyFactory(), SystemKeyFactory()]
    client = logged_in(SuperuserFactory())
    flaky.broken = True
    response = act(client, SYSTEM_LIST, "disable_selected", keys)
    assert response.status_code == 302
    response = client.post(f"{SYSTEM_LIST}{keys[0].pk}/state/", {"state": "disable"})
    assert response.status_code == 302
    flaky.broken = False
    assert disabled(*keys) == [False, False]
    assert not KeyEvent.objects.filter(action="disabled").exists()
    messages = [str(m) for m in client.get(SYSTEM_LIST).context["messages"]]
    assert len(messages) == 2
    assert all("cache cannot be reached" in text and "nothing changed" in text for text in messages)


def test_one_unreachable_cache_mid_action_undoes_the_whole_action(
    flaky: type[FlakyCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """All the selected keys change, or none: a refusal at the second undoes the first."""
    from phoenix_apikeys import cache

    keys = [SystemKeyFactory(), SystemKeyFactory()]
    retire_now, calls = cache.retire_now, []

    def second_fails(names: list[str], *, required: bool = True) -> None:
        calls.append(names)
        if len(calls) == 2:
            raise cache.CacheUnreachable
        retire_now(names, required=required)

    monkeypatch.setattr(cache, "retire_now", second_fails)
    act(logged_in(SuperuserFactory()), SYSTEM_LIST, "disable_selected", keys)
    assert len(calls) == 2
    assert disabled(*keys) == [False, False]
    assert not KeyEvent.objects.filter(action="disabled").exists()
