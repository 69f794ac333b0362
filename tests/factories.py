"""factory-boy factories for users and keys; key factories keep the plaintext on ``.plaintext``."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from phoenix_apikeys.models import AbstractAPIKey, SystemKey, UserKey


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def saved(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.save()


class StaffFactory(UserFactory):
    is_staff = True


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class _KeyFactory(factory.django.DjangoModelFactory):
    """Goes through ``create_key`` like every real caller, so digests are real."""

    class Meta:
        abstract = True

    name = factory.Sequence(lambda n: f"key {n}")
    description = ""
    expires_at = None

    @classmethod
    def _create(cls, model_class: type[AbstractAPIKey], *args: Any, **kwargs: Any) -> Any:
        key, plaintext = model_class.objects.create_key(**kwargs)
        key.plaintext = plaintext
        return key


class UserKeyFactory(_KeyFactory):
    class Meta:
        model = UserKey

    user = factory.SubFactory(UserFactory)


class SystemKeyFactory(_KeyFactory):
    class Meta:
        model = SystemKey

    created_by = factory.SubFactory(SuperuserFactory)


def key_of_inactive_owner() -> UserKey:
    """A key whose owner was deactivated after it was made: create_key refuses inactive owners."""
    key: UserKey = UserKeyFactory()
    key.user.is_active = False
    key.user.save()
    return key
