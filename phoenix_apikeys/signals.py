"""Signals for the key lifecycle; receivers get key objects and ids, never plaintext."""

from django.dispatch import Signal

# sender: the key model; kwargs: key
key_created = Signal()
# sender: the key model; kwargs: key (already deleted from the database)
key_revoked = Signal()
# sender: the key model; kwargs: key (its digest re-keyed from a fallback secret)
key_rotated = Signal()
# sender: None; kwargs: reason (our own words), kind (a keys.Credential: "system_key",
# "user_key" or "admin_secret"; None when the text is none of them), key_id (the opaque id,
# when a stored key was found but refused)
authentication_failed = Signal()
# sender: the key model; kwargs: old (the key replaced: its expires_at now the end of its grace
# period, or already deleted when there was none), new (the key made to replace it)
key_replaced = Signal()
# sender: KeyEvent; kwargs: event (a models.KeyEvent, once the transaction writing it commits)
key_event_recorded = Signal()
