"""Django admin pages for system and user keys, and the hooks that protect the system user.

Django's admin autodiscover imports this package: importing it registers the key admins on the
default site. ``keys`` holds the key admins, ``forms`` their add form, ``columns`` the list
columns and status filter, ``state`` a key's restrictions on its page and disabling and
enabling, ``access`` who may do what, ``users`` the host's user admin, ``records`` the audit
trail and the expiry notices sent.
"""

from django.contrib import admin

from ..models import SystemKey, UserKey
from .access import made_with_api_key, may_manage_keys_of, sees_all_user_keys
from .columns import KeyColumns, StatusFilter
from .forms import KeyAddForm
from .keys import APIKeyAdmin, SystemKeyAdmin, UserKeyAdmin
from .records import ExpiryNoticeAdmin, KeyEventAdmin
from .state import KeyState
from .users import (
    ReservedSystemUsername,
    SystemUserProtection,
    UserKeyInline,
    register_user_admin,
    user_admin_warnings,
)

__all__ = [
    "APIKeyAdmin",
    "ExpiryNoticeAdmin",
    "KeyAddForm",
    "KeyColumns",
    "KeyEventAdmin",
    "KeyState",
    "ReservedSystemUsername",
    "StatusFilter",
    "SystemKeyAdmin",
    "SystemUserProtection",
    "UserKeyAdmin",
    "UserKeyInline",
    "made_with_api_key",
    "may_manage_keys_of",
    "register_user_admin",
    "sees_all_user_keys",
    "user_admin_warnings",
]

admin.site.register(SystemKey, SystemKeyAdmin)
admin.site.register(UserKey, UserKeyAdmin)
