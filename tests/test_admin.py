"""The admin pages, through Django's test client: the one-time key page, permissions,
read-only fields, revocation and the protected system user."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from phoenix_apikeys.admin import (
    SystemUserProtection,
    UserKeyInline,
    register_user_admin,
    user_admin_warnings,
)
from phoenix_apikeys.models import KeyStatus, SystemKey, UserKey, system_user
from phoenix_apikeys.signals import key_revoked

from .factories import (
    StaffFactory,
    SuperuserFactory,
    SystemKeyFactory,
    UserFactory,
    UserKeyFactory,
    key_of_inactive_owner,
)
from .test_models import all_rows_as_text

pytestmark = pytest.mark.django_db

SYSTEM_ADD = "/admin/phoenix_apikeys/systemkey/add/"
SYSTEM_LIST = "/admin/phoenix_apikeys/systemkey/"
USER_ADD = "/admin/phoenix_apikeys/userkey/add/"
USER_LIST = "/admin/phoenix_apikeys/userkey/"
KEY_PATTERN = re.compile(r"phx[su]_[0-9A-Za-z]{38}")


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def grant(user: Any, *codenames: str) -> Any:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user)._default_manager.get(pk=user.pk)  # drop the permission cache


def nonce_of(client: Client, add_url: str) -> str:
    page = client.get(add_url).content.decode()
    match = re.search(r'name="nonce" value="([0-9A-Za-z]+)"', page)
    assert match, "the add form carries a nonce"
    return match.group(1)


def add_key(client: Client, add_url: str, nonce: str | None = None, **data: Any) -> Any:
    fields = {"name": "ci", "description": "", "expires_in": "30", "expires_on": ""}
    fields.update(data)
    fields["nonce"] = nonce or nonce_of(client, add_url)
    return client.post(add_url, fields)


def shown_key(response: Any) -> str:
    match = KEY_PATTERN.search(response.content.decode())
    assert match, "the created page shows the key"
    return match.group(0)


def whoami(key: str) -> int:
    return APIClient().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code


# The one-time key page ------------------------------------------------------------------------


def test_created_page_shows_a_working_system_key() -> None:
    creator = SuperuserFactory()
    response = add_key(logged_in(creator), SYSTEM_ADD, name="deploy bot")
    assert response.status_code == 200
    assert "will not be shown again" in response.content.decode()
    key = SystemKey.objects.get()
    assert (key.name, key.created_by) == ("deploy bot", creator)
    assert whoami(shown_key(response)) == 200


def test_created_page_is_never_stored_by_a_cache() -> None:
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD)
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"


def test_key_travels_in_no_cookie_session_or_location_header() -> None:
    client = logged_in(SuperuserFactory())
    nonce = nonce_of(client, SYSTEM_ADD)
    created = add_key(client, SYSTEM_ADD, nonce=nonce)
    plaintext = shown_key(created)
    replay = add_key(client, SYSTEM_ADD, nonce=nonce)
    changelist = client.get(replay["Location"])
    for response in (created, replay, changelist):
        assert plaintext not in response.get("Location", "")
        assert all(plaintext not in morsel.value for morsel in response.cookies.values())
    assert all(plaintext not in morsel.value for morsel in client.cookies.values())
    assert plaintext not in repr(dict(client.session.items()))


def test_key_appears_in_no_log_record_and_no_stored_row(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = logged_in(SuperuserFactory())
    plaintext = shown_key(add_key(client, SYSTEM_ADD))
    plaintext_user = shown_key(add_key(client, USER_ADD))
    for key in (plaintext, plaintext_user):
        assert all(key[5:-6] not in record.getMessage() for record in caplog.records)
        assert key[5:-6] not in all_rows_as_text()  # sessions and admin LogEntry included
    assert LogEntry.objects.count() == 2


def test_reloading_the_created_page_creates_nothing_and_shows_no_key() -> None:
    client = logged_in(SuperuserFactory())
    nonce = nonce_of(client, SYSTEM_ADD)
    add_key(client, SYSTEM_ADD, nonce=nonce)
    replay = add_key(client, SYSTEM_ADD, nonce=nonce)
    assert replay.status_code == 302
    assert replay["Location"] == SYSTEM_LIST
    assert SystemKey.objects.count() == 1
    changelist = client.get(SYSTEM_LIST).content.decode()
    assert "not shown again" in changelist
    assert not KEY_PATTERN.search(changelist)


def test_an_invalid_form_keeps_its_nonce_usable() -> None:
    client = logged_in(SuperuserFactory())
    nonce = nonce_of(client, SYSTEM_ADD)
    refused = add_key(client, SYSTEM_ADD, nonce=nonce, name="   ")
    assert refused.status_code == 200 and not SystemKey.objects.exists()
    assert add_key(client, SYSTEM_ADD, nonce=nonce).status_code == 200
    assert SystemKey.objects.count() == 1


def test_each_add_form_gets_a_fresh_nonce() -> None:
    client = logged_in(SuperuserFactory())
    assert nonce_of(client, SYSTEM_ADD) != nonce_of(client, SYSTEM_ADD)


# Expiry -------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [7, 30, 90])
def test_a_preset_sets_the_expiry_that_many_days_ahead(days: int) -> None:
    add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_in=str(days))
    expires_at = SystemKey.objects.get().expires_at
    assert expires_at is not None
    assert abs(expires_at - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_never_leaves_the_key_without_expiry() -> None:
    add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_in="never")
    assert SystemKey.objects.get().expires_at is None


def test_a_date_expires_the_key_at_the_start_of_that_day() -> None:
    day = date.today() + timedelta(days=10)
    add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_in="date", expires_on=day)
    expected = timezone.make_aware(datetime.combine(day, time.min))
    assert SystemKey.objects.get().expires_at == expected


def test_a_date_without_choosing_on_a_date_is_refused() -> None:
    day = date.today() + timedelta(days=10)
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_on=day)
    assert response.status_code == 200
    assert "expires_in" in response.context["adminform"].form.errors
    assert not SystemKey.objects.exists()


def test_a_date_in_the_past_is_refused() -> None:
    day = date.today() - timedelta(days=1)
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_in="date", expires_on=day)
    assert "expires_on" in response.context["adminform"].form.errors
    assert not SystemKey.objects.exists()


def test_a_malformed_date_is_refused() -> None:
    client = logged_in(SuperuserFactory())
    response = add_key(client, SYSTEM_ADD, expires_in="date", expires_on="next tuesday")
    assert "expires_on" in response.context["adminform"].form.errors
    assert not SystemKey.objects.exists()


def test_the_lifetime_limit_hides_longer_presets_and_never(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=30)}
    page = logged_in(SuperuserFactory()).get(SYSTEM_ADD)
    choices = [value for value, _ in page.context["adminform"].form.fields["expires_in"].choices]
    assert choices == ["7", "30", "date"]
    assert "at most 30 days" in page.content.decode()


def test_a_date_beyond_the_lifetime_limit_is_refused(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"MAX_KEY_LIFETIME": timedelta(days=30)}
    day = date.today() + timedelta(days=60)
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_in="date", expires_on=day)
    assert "MAX_KEY_LIFETIME" in str(response.context["adminform"].form.errors["expires_on"])
    assert not SystemKey.objects.exists()


# Who may create -------------------------------------------------------------------------------


def test_staff_without_the_add_permission_cannot_add_system_keys() -> None:
    client = logged_in(StaffFactory())
    assert client.get(SYSTEM_ADD).status_code == 403
    response = client.post(SYSTEM_ADD, {"name": "x", "expires_in": "7", "nonce": "n" * 32})
    assert response.status_code == 403
    assert not SystemKey.objects.exists()


def test_staff_with_the_add_permission_can_add_system_keys() -> None:
    staff = grant(StaffFactory(), "add_systemkey", "view_systemkey")
    response = add_key(logged_in(staff), SYSTEM_ADD)
    assert whoami(shown_key(response)) == 200


def test_a_request_made_with_an_api_key_cannot_create_keys() -> None:
    superuser_key = UserKeyFactory(user=SuperuserFactory())
    client = Client(HTTP_AUTHORIZATION=f"Bearer {superuser_key.plaintext}")
    fields = {"name": "minted", "expires_in": "7", "nonce": "n" * 32}
    assert client.post(SYSTEM_ADD, fields).status_code == 403
    assert client.post(USER_ADD, fields).status_code == 403
    assert not SystemKey.objects.exists()
    assert UserKey.objects.count() == 1


def test_any_staff_user_creates_their_own_user_key() -> None:
    staff = StaffFactory()
    response = add_key(logged_in(staff), USER_ADD)
    assert UserKey.objects.get().user == staff
    assert APIClient().get(
        "/whoami/", HTTP_AUTHORIZATION=f"Bearer {shown_key(response)}"
    ).json() == {"username": staff.username, "auth": str(UserKey.objects.get())}


def test_nobody_creates_a_user_key_for_another_user() -> None:
    other = UserFactory()
    client = logged_in(SuperuserFactory())
    assert b'name="user"' not in client.get(USER_ADD).content
    add_key(client, USER_ADD, user=other.pk)
    assert not UserKey.objects.filter(user=other).exists()


def test_save_as_new_cannot_create_a_key() -> None:
    key = SystemKeyFactory()
    client = logged_in(SuperuserFactory())
    url = f"{SYSTEM_LIST}{key.pk}/change/"
    response = client.post(url, {"name": "copy", "description": "", "_saveasnew": "1"})
    assert response.status_code == 403
    assert SystemKey.objects.count() == 1


# Read-only after creation ---------------------------------------------------------------------


def test_the_change_form_edits_only_name_and_description() -> None:
    key = SystemKeyFactory(expires_at=timezone.now() + timedelta(days=5))
    before = SystemKey.objects.get(pk=key.pk)
    client = logged_in(SuperuserFactory())
    url = f"{SYSTEM_LIST}{key.pk}/change/"
    later = (timezone.now() + timedelta(days=300)).isoformat()
    fields = {"name": "renamed", "description": "new words", "expires_at": later, "hint": "zzzz"}
    assert client.post(url, fields).status_code == 302
    key.refresh_from_db()
    assert (key.name, key.description) == ("renamed", "new words")
    assert (key.expires_at, key.hint, key.digest) == (before.expires_at, before.hint, before.digest)


def test_the_change_form_shows_the_rest_read_only() -> None:
    key = SystemKeyFactory()
    page = logged_in(SuperuserFactory()).get(f"{SYSTEM_LIST}{key.pk}/change/")
    form = page.context["adminform"].form
    assert set(form.fields) == {"name", "description"}
    assert key.prefixed_hint in page.content.decode()


# Changelist -----------------------------------------------------------------------------------


def make_keys_of_each_status() -> dict[KeyStatus, SystemKey]:
    """One system key of each status but owner_inactive, which all system keys share."""
    keys = {
        KeyStatus.ACTIVE: SystemKeyFactory(name="long lived"),
        KeyStatus.EXPIRING: SystemKeyFactory(
            name="short lived", expires_at=timezone.now() + timedelta(days=2)
        ),
        KeyStatus.EXPIRED: SystemKeyFactory(
            name="dead", expires_at=timezone.now() + timedelta(days=1)
        ),
    }
    SystemKey.objects.filter(pk=keys[KeyStatus.EXPIRED].pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    return keys


@pytest.mark.parametrize("status", [KeyStatus.ACTIVE, KeyStatus.EXPIRING, KeyStatus.EXPIRED])
def test_changelist_filters_by_status(status: KeyStatus) -> None:
    keys = make_keys_of_each_status()
    page = logged_in(SuperuserFactory()).get(SYSTEM_LIST, {"status": status.value})
    assert [key.pk for key in page.context["cl"].result_list] == [keys[status].pk]


def test_user_keys_of_an_inactive_owner_are_listed_and_filtered_as_such() -> None:
    idle, working = key_of_inactive_owner(), UserKeyFactory()
    client = logged_in(SuperuserFactory())
    page = client.get(USER_LIST, {"status": KeyStatus.OWNER_INACTIVE.value})
    assert list(page.context["cl"].result_list) == [idle]
    assert '<span class="phoenix-key-status owner-inactive">owner inactive</span>' in (
        page.content.decode()
    )
    unfiltered = client.get(USER_LIST).context["cl"].result_list
    assert {key.pk for key in unfiltered} == {idle.pk, working.pk}


def test_the_user_page_shows_each_keys_status() -> None:
    owner = UserFactory()
    UserKeyFactory(user=owner, expires_at=timezone.now() + timedelta(days=2))
    page = logged_in(SuperuserFactory()).get(user_change_url(owner)).content.decode()
    assert '<span class="phoenix-key-status expiring">expires soon</span>' in page


def test_changelist_shows_hint_status_and_creator() -> None:
    creator = SuperuserFactory(username="alice")
    keys = make_keys_of_each_status()
    page = logged_in(creator).get(SYSTEM_LIST).content.decode()
    for key in keys.values():
        assert key.prefixed_hint in page
    for css, label in (
        ("active", "active"),
        ("expiring", "expires soon"),
        ("expired", "expired"),
    ):
        assert f'<span class="phoenix-key-status {css}">{label}</span>' in page
    for key in keys.values():
        assert f'<td class="field-created_by nowrap">{key.created_by.get_username()}</td>' in page


def test_changelist_finds_a_key_by_its_displayed_hint() -> None:
    wanted, _other = SystemKeyFactory(), SystemKeyFactory()
    page = logged_in(SuperuserFactory()).get(SYSTEM_LIST, {"q": wanted.prefixed_hint})
    assert list(page.context["cl"].result_list) == [wanted]


def test_changelist_finds_a_key_by_name() -> None:
    wanted, _other = SystemKeyFactory(name="nightly export"), SystemKeyFactory(name="backup")
    page = logged_in(SuperuserFactory()).get(SYSTEM_LIST, {"q": "nightly"})
    assert list(page.context["cl"].result_list) == [wanted]


# Revocation -----------------------------------------------------------------------------------


def test_delete_confirmation_says_what_stops_working() -> None:
    key = SystemKeyFactory()
    page = logged_in(SuperuserFactory()).get(f"{SYSTEM_LIST}{key.pk}/delete/").content.decode()
    assert "revokes it" in page and key.prefixed_hint in page
    assert "<code>401 Unauthorized</code>" in page


def test_deleting_in_the_admin_revokes_the_key(key_cache: str) -> None:
    key = SystemKeyFactory()
    assert whoami(key.plaintext) == 200  # now cached
    client = logged_in(SuperuserFactory())
    client.post(f"{SYSTEM_LIST}{key.pk}/delete/", {"post": "yes"})
    assert whoami(key.plaintext) == 401


def test_bulk_delete_revokes_every_selected_key(
    key_cache: str, django_capture_on_commit_callbacks: Any
) -> None:
    keys = [SystemKeyFactory(), SystemKeyFactory()]
    kept = SystemKeyFactory()
    for key in (*keys, kept):
        assert whoami(key.plaintext) == 200  # now cached
    revoked: list[int] = []
    receiver = lambda key, **kwargs: revoked.append(key.pk)  # noqa: E731
    key_revoked.connect(receiver, weak=False)
    try:
        client = logged_in(SuperuserFactory())
        selected = {"action": "delete_selected", "_selected_action": [key.pk for key in keys]}
        confirmation = client.post(SYSTEM_LIST, selected).content.decode()
        assert "revokes it" in confirmation
        with django_capture_on_commit_callbacks(execute=True):
            client.post(SYSTEM_LIST, {**selected, "post": "yes"})
    finally:
        key_revoked.disconnect(receiver)
    assert sorted(revoked) == sorted(key.pk for key in keys)
    assert [whoami(key.plaintext) for key in keys] == [401, 401]
    assert whoami(kept.plaintext) == 200


# User keys: who sees what ---------------------------------------------------------------------


def test_staff_see_only_their_own_user_keys() -> None:
    staff = StaffFactory()
    own, _other = UserKeyFactory(user=staff), UserKeyFactory()
    page = logged_in(staff).get(USER_LIST)
    assert list(page.context["cl"].result_list) == [own]
    assert "Your API keys" in page.content.decode()


def test_staff_cannot_open_another_users_key() -> None:
    other_key = UserKeyFactory()
    response = logged_in(StaffFactory()).get(f"{USER_LIST}{other_key.pk}/change/")
    assert response.status_code == 302  # "does not exist", as for a missing id
    assert response["Location"] == "/admin/"


def test_staff_cannot_delete_another_users_key() -> None:
    other_key = UserKeyFactory()
    logged_in(StaffFactory()).post(f"{USER_LIST}{other_key.pk}/delete/", {"post": "yes"})
    assert UserKey.objects.filter(pk=other_key.pk).exists()


def test_staff_revoke_their_own_key() -> None:
    staff = StaffFactory()
    key = UserKeyFactory(user=staff)
    logged_in(staff).post(f"{USER_LIST}{key.pk}/delete/", {"post": "yes"})
    assert not UserKey.objects.exists()
    assert whoami(key.plaintext) == 401


def test_staff_see_no_system_keys() -> None:
    client = logged_in(StaffFactory())
    assert client.get(SYSTEM_LIST).status_code == 403
    assert b"system API keys" not in client.get("/admin/").content


def test_the_inventory_permission_sees_and_revokes_every_key_but_renames_none() -> None:
    auditor = grant(StaffFactory(), "view_all_userkeys")
    keys = [UserKeyFactory(), UserKeyFactory()]
    client = logged_in(auditor)
    assert set(client.get(USER_LIST).context["cl"].result_list) == set(keys)
    url = f"{USER_LIST}{keys[0].pk}/change/"
    assert client.post(url, {"name": "mine now", "description": ""}).status_code == 403
    client.post(f"{USER_LIST}{keys[0].pk}/delete/", {"post": "yes"})
    assert list(UserKey.objects.all()) == [keys[1]]


def test_superusers_see_every_user_key_with_its_owner() -> None:
    keys = [UserKeyFactory(), UserKeyFactory()]
    page = logged_in(SuperuserFactory()).get(USER_LIST)
    assert set(page.context["cl"].result_list) == set(keys)
    for key in keys:
        owner_cell = f'<td class="field-owner">{key.user.username}</td>'
        assert owner_cell in page.content.decode()


def test_the_owner_column_sorts_and_searches_by_username() -> None:
    zed = UserKeyFactory(user=UserFactory(username="zed"))
    amy = UserKeyFactory(user=UserFactory(username="amy"))
    client = logged_in(SuperuserFactory())
    page = client.get(USER_LIST)
    (column,) = [i for i, name in enumerate(page.context["cl"].list_display) if name == "owner"]
    assert '<th scope="col" class="sortable column-owner">' in page.content.decode()
    assert ">Owner</a>" in page.content.decode()
    assert list(client.get(USER_LIST, {"o": column}).context["cl"].result_list) == [amy, zed]
    assert list(client.get(USER_LIST, {"o": f"-{column}"}).context["cl"].result_list) == [zed, amy]
    assert list(client.get(USER_LIST, {"q": "zed"}).context["cl"].result_list) == [zed]


# The host's user admin ------------------------------------------------------------------------


def user_change_url(user: Any) -> str:
    return f"/admin/testapp/user/{user.pk}/change/"


def test_the_hosts_user_admin_gets_the_inline_and_stays_the_hosts() -> None:
    from tests.testapp.admin import UserAdmin as HostUserAdmin

    user_admin = admin.site._registry[UserFactory._meta.model]
    assert isinstance(user_admin, HostUserAdmin)
    assert UserKeyInline in user_admin.inlines


def test_registering_twice_lists_the_keys_once() -> None:
    from tests.testapp.admin import UserAdmin as HostUserAdmin

    site = admin.AdminSite(name="again")
    once = register_user_admin(site, base=HostUserAdmin)
    twice = register_user_admin(site, base=once)
    assert issubclass(twice, HostUserAdmin) and twice.inlines.count(UserKeyInline) == 1
    assert user_admin_warnings(site) == []


def test_the_user_page_lists_their_keys_read_only() -> None:
    owner = UserFactory()
    key = UserKeyFactory(user=owner)
    page = logged_in(SuperuserFactory()).get(user_change_url(owner))
    (inline,) = [i for i in page.context["inline_admin_formsets"] if i.opts.model is UserKey]
    assert key.prefixed_hint in page.content.decode()
    assert inline.formset.forms[0].fields.keys() <= {"id", "user", "DELETE"}


def management_form(prefix: str, total: int) -> dict[str, Any]:
    return {f"{prefix}-TOTAL_FORMS": total, f"{prefix}-INITIAL_FORMS": total}


def test_deleting_a_key_on_the_user_page_revokes_it() -> None:
    owner = UserFactory()
    key = UserKeyFactory(user=owner)
    client = logged_in(SuperuserFactory())
    data = {
        "username": owner.username,
        "date_joined_0": owner.date_joined.date().isoformat(),
        "date_joined_1": owner.date_joined.time().strftime("%H:%M:%S"),
        "phoenix_api_keys-0-id": key.pk,
        "phoenix_api_keys-0-user": owner.pk,
        "phoenix_api_keys-0-DELETE": "on",
        **management_form("phoenix_api_keys", 1),
    }
    assert client.post(user_change_url(owner), data).status_code == 302
    assert not UserKey.objects.exists()
    assert whoami(key.plaintext) == 401


def test_the_system_user_cannot_be_deleted() -> None:
    system = system_user()
    client = logged_in(SuperuserFactory())
    assert (
        client.post(f"/admin/testapp/user/{system.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    bulk = {"action": "delete_selected", "_selected_action": [system.pk], "post": "yes"}
    client.post("/admin/testapp/user/", bulk)
    assert type(system)._default_manager.filter(pk=system.pk).exists()


def test_the_system_user_cannot_be_given_a_password() -> None:
    system = system_user()
    client = logged_in(SuperuserFactory())
    url = f"/admin/testapp/user/{system.pk}/password/"
    secret = "a-perfectly-fine-password-123"
    response = client.post(
        url, {"password1": secret, "password2": secret, "usable_password": "true"}
    )
    assert response.status_code == 302
    system.refresh_from_db()
    assert not system.has_usable_password()


def test_the_system_users_page_says_what_it_is() -> None:
    page = logged_in(SuperuserFactory()).get(user_change_url(system_user()))
    assert "This is the system user" in page.content.decode()


def test_the_system_users_page_offers_no_password_field() -> None:
    system = system_user()
    client = logged_in(SuperuserFactory())
    system_page = client.get(user_change_url(system)).content.decode()
    other_page = client.get(user_change_url(UserFactory())).content.decode()
    assert "/password/" not in system_page
    assert "/password/" in other_page


def test_other_users_can_still_be_deleted_and_given_passwords() -> None:
    other = UserFactory()
    client = logged_in(SuperuserFactory())
    secret = "a-perfectly-fine-password-123"
    url = f"/admin/testapp/user/{other.pk}/password/"
    client.post(url, {"password1": secret, "password2": secret, "usable_password": "true"})
    other.refresh_from_db()
    assert other.check_password(secret)
    client.post(f"/admin/testapp/user/{other.pk}/delete/", {"post": "yes"})
    assert not type(other)._default_manager.filter(pk=other.pk).exists()


def test_nobody_can_add_a_user_with_the_system_users_name() -> None:
    client = logged_in(SuperuserFactory())
    secret = "a-perfectly-fine-password-123"
    fields = {"username": "system", "password1": secret, "password2": secret}
    response = client.post("/admin/testapp/user/add/", {**fields, "usable_password": "true"})
    assert "reserved for the system user" in response.content.decode()
    assert not UserFactory._meta.model.objects.filter(username="system").exists()


def system_user_form(system: Any, **fields: str) -> dict[str, Any]:
    """The system user's change form as a browser would submit it, with ``fields`` changed."""
    return {
        "username": system.username,
        "email": "",
        "is_active": "on",
        "date_joined_0": system.date_joined.date().isoformat(),
        "date_joined_1": system.date_joined.time().strftime("%H:%M:%S"),
        **management_form("phoenix_api_keys", 0),
        **fields,
    }


def test_the_system_users_page_still_saves() -> None:
    system = system_user()
    data = system_user_form(system, email="robot@example.com")
    response = logged_in(SuperuserFactory()).post(user_change_url(system), data)
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.email == "robot@example.com"


def test_the_readmes_manual_wiring_protects_the_system_user(rf: Any) -> None:
    user_model = UserFactory._meta.model

    class MyUserAdmin(SystemUserProtection, DjangoUserAdmin):
        inlines = [*DjangoUserAdmin.inlines, UserKeyInline]

    site = admin.AdminSite(name="custom")
    site.register(user_model, MyUserAdmin)
    request = rf.get("/")
    request.user = SuperuserFactory()
    user_admin = site._registry[user_model]
    assert not user_admin.has_delete_permission(request, system_user())
    assert user_admin.has_delete_permission(request, UserFactory())


def test_registering_on_a_site_of_your_own_protects_the_system_user_there(rf: Any) -> None:
    user_model = UserFactory._meta.model
    site = admin.AdminSite(name="custom")
    register_user_admin(site)  # Django's UserAdmin as the base
    request = rf.get("/")
    request.user = SuperuserFactory()
    user_admin = site._registry[user_model]
    assert not user_admin.has_delete_permission(request, system_user())
    assert user_admin.has_delete_permission(request, UserFactory())


def test_the_system_user_cannot_be_renamed_or_made_staff_or_superuser() -> None:
    system = system_user()
    data = system_user_form(system, username="taken-over", is_staff="on", is_superuser="on")
    response = logged_in(SuperuserFactory()).post(user_change_url(system), data)
    assert response.status_code == 302
    system.refresh_from_db()
    assert (system.username, system.is_staff, system.is_superuser) == ("system", False, False)


def test_the_system_users_page_shows_name_and_roles_read_only() -> None:
    system = system_user()
    page = logged_in(SuperuserFactory()).get(user_change_url(system)).content.decode()
    assert 'name="username"' not in page
    assert 'name="is_staff"' not in page
    assert 'name="is_superuser"' not in page
    other = logged_in(SuperuserFactory()).get(user_change_url(UserFactory())).content.decode()
    assert 'name="is_superuser"' in other


# Errors of the model layer, on the fields they concern ----------------------------------------


def test_a_missing_secret_is_said_above_the_form_and_creates_nothing(settings: Any) -> None:
    client = logged_in(SuperuserFactory())
    nonce = nonce_of(client, SYSTEM_ADD)
    settings.PHOENIX_SECRET = None
    response = add_key(client, SYSTEM_ADD, nonce=nonce)
    assert response.status_code == 200
    assert "PHOENIX_SECRET is not set" in str(response.context["adminform"].form.non_field_errors())
    assert not SystemKey.objects.exists()
    settings.PHOENIX_SECRET = "tests-only-phoenix-secret-0123456789abcdef"
    assert add_key(client, SYSTEM_ADD, nonce=nonce).status_code == 200  # the nonce still works
    assert SystemKey.objects.count() == 1


def test_a_refusal_at_issue_time_lands_on_the_field_it_concerns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.exceptions import ValidationError

    from phoenix_apikeys.models import KeyManager

    def refuse(manager: Any, key: Any) -> str:
        raise ValidationError({"expires_at": "Expiry moved.", "user": "Owner left."})

    monkeypatch.setattr(KeyManager, "issue", refuse)
    day = date.today() + timedelta(days=10)
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, expires_in="date", expires_on=day)
    form = response.context["adminform"].form
    assert form.errors["expires_on"] == ["Expiry moved."]
    assert form.non_field_errors() == ["Owner left."]
    assert not SystemKey.objects.exists()


def test_a_blank_name_gets_one_error() -> None:
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, name="   ")
    assert response.context["adminform"].form.errors["name"] == ["This field is required."]


def test_an_invisible_name_is_refused_by_the_models_rule() -> None:
    response = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD, name="\u200b")
    assert response.context["adminform"].form.errors["name"] == ["Name must not be blank."]
    assert not SystemKey.objects.exists()


# The W010 check -------------------------------------------------------------------------------


def test_no_warning_when_the_user_admin_is_extended() -> None:
    assert user_admin_warnings(admin.site) == []


@pytest.mark.parametrize("user_admin", [None, admin.ModelAdmin, DjangoUserAdmin])
def test_a_user_admin_that_was_not_extended_is_reported(user_admin: Any) -> None:
    site = admin.AdminSite(name="custom")
    if user_admin is not None:
        site.register(UserFactory._meta.model, user_admin)
    (warning,) = user_admin_warnings(site)
    assert warning.id == "phoenix_apikeys.W010"
    assert "register_user_admin" in warning.hint


def test_the_readmes_manual_wiring_passes_the_check() -> None:
    class MyUserAdmin(SystemUserProtection, DjangoUserAdmin):
        inlines = [*DjangoUserAdmin.inlines, UserKeyInline]

    site = admin.AdminSite(name="custom")
    site.register(UserFactory._meta.model, MyUserAdmin)
    assert user_admin_warnings(site) == []


# Scopes in the admin ---------------------------------------------------------------------------


def test_the_add_form_makes_a_scoped_key_from_the_owners_permissions() -> None:
    from django.contrib.auth.models import Permission

    owner = StaffFactory()
    owner.user_permissions.add(Permission.objects.get(codename="view_group"))
    client = logged_in(owner)
    form = client.get(USER_ADD).context["adminform"].form
    assert [value for value, _ in form.fields["permissions"].choices] == ["auth.view_group"]
    response = add_key(client, USER_ADD, read_only="on", permissions=["auth.view_group"])
    assert response.status_code == 200
    key = UserKey.objects.get()
    assert key.scope_list == ("auth.view_group", "read")
    listed = client.get(USER_LIST).content.decode()
    assert "read + 1 perm" in listed and 'title="auth.view_group read"' in listed


def test_a_permission_the_owner_lacks_is_not_offered_nor_accepted() -> None:
    client = logged_in(StaffFactory())
    response = add_key(client, USER_ADD, permissions=["auth.delete_group"])
    errors = response.context["adminform"].form.errors["permissions"]
    assert "not one of the available choices" in errors[0]
    assert not UserKey.objects.exists()


def test_a_system_key_is_scoped_to_the_system_users_permissions() -> None:
    from django.contrib.auth.models import Permission

    client = logged_in(SuperuserFactory())
    offered = client.get(SYSTEM_ADD).context["adminform"].form.fields["permissions"].choices
    assert list(offered) == []  # the superuser's authority is not the system user's
    system_user().user_permissions.add(Permission.objects.get(codename="add_group"))
    response = add_key(client, SYSTEM_ADD, permissions=["auth.add_group"])
    assert response.status_code == 200
    assert SystemKey.objects.get().scope_list == ("auth.add_group",)


def test_an_unscoped_key_shows_all() -> None:
    client = logged_in(SuperuserFactory())
    SystemKeyFactory()
    assert '<span class="phoenix-key-scopes">all</span>' in client.get(SYSTEM_LIST).content.decode()


@pytest.mark.parametrize("lookup", ["digest__startswith", "digest", "digest__gt"])
def test_the_changelist_cannot_be_filtered_by_digest(lookup: str) -> None:
    client = logged_in(SuperuserFactory())
    key = SystemKeyFactory()
    response = client.get(SYSTEM_LIST, {lookup: key.digest[:1]})
    # Django answers a disallowed lookup by dropping to the unfiltered list with ?e=1.
    assert response.status_code in (302, 400)
    assert key.digest[:8] not in response.content.decode()


def test_the_created_page_names_the_configured_keyword(settings: Any) -> None:
    settings.PHOENIX_APIKEYS = {"AUTH_HEADER_KEYWORD": "Token"}
    page = add_key(logged_in(SuperuserFactory()), SYSTEM_ADD).content.decode()
    assert "Authorization: Token &lt;key&gt;" in page


def test_a_keys_page_lists_every_scope() -> None:
    from django.contrib.auth.models import Permission

    owner = StaffFactory()
    owner.user_permissions.add(Permission.objects.get(codename="view_group"))
    key = UserKeyFactory(user=owner, scopes=["read", "auth.view_group"])
    page = logged_in(owner).get(f"{USER_LIST}{key.pk}/change/").content.decode()
    assert "<code>auth.view_group</code><br><code>read</code>" in page
    assert "its scopes and its expiry are fixed" in page
