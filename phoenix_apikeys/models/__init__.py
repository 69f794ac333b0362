"""The app's models: keys (keys.py), their lifecycle (state.py), the system user, the audit
trail and expiry notices."""

from .events import KeyEvent, KeyEventQuerySet
from .expiry import LAST_EXPIRY_YEAR, validate_expiry
from .keys import (
    EDITABLE_FIELDS,
    EXPIRING_WITHIN,
    KEY_MODELS,
    MAX_DESCRIPTION_LENGTH,
    AbstractAPIKey,
    APIKeyQuerySet,
    KeyStatus,
    SystemKey,
    UserKey,
    find_key_by_id,
    find_key_by_plaintext,
)
from .notices import ExpiryNotice
from .state import KeyManager, MissingSecretError, revoke_leaked
from .system_user import SystemUser, is_system_user, system_user, system_user_id

__all__ = [
    "EDITABLE_FIELDS",
    "EXPIRING_WITHIN",
    "KEY_MODELS",
    "LAST_EXPIRY_YEAR",
    "MAX_DESCRIPTION_LENGTH",
    "APIKeyQuerySet",
    "AbstractAPIKey",
    "ExpiryNotice",
    "KeyEvent",
    "KeyEventQuerySet",
    "KeyManager",
    "KeyStatus",
    "MissingSecretError",
    "SystemKey",
    "SystemUser",
    "UserKey",
    "find_key_by_id",
    "find_key_by_plaintext",
    "is_system_user",
    "revoke_leaked",
    "system_user",
    "system_user_id",
    "validate_expiry",
]
