from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A custom AUTH_USER_MODEL, so the suite proves the app does not assume auth.User."""
