from phoenix_apikeys.admin import register_user_admin

# Django's UserAdmin, with each user's keys and the system user's protections.
register_user_admin()
