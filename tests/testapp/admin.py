from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from phoenix_apikeys.admin import register_user_admin


class UserAdmin(DjangoUserAdmin):
    """The host's own user admin, registered with each user's keys and the system user's
    protections."""


register_user_admin(base=UserAdmin)
