"""Signals for the key lifecycle; receivers get key objects and ids, never plaintext."""

from django.dispatch import Signal

# sender: the key model; kwargs: key
key_created = Signal()
# sender: the key model; kwargs: key (already deleted from the database)
key_revoked = Signal()
# sender: the key model; kwargs: key (its digest re-keyed from a fallback secret)
key_rekeyed = Signal()
# sender: None; kwargs: reason (our own words), kind (a keys.Credential: "system_key",
# "user_key" or "admin_secret"; None when the text is none of them), key_id (the opaque id,
# when a stored key was found but refused)
authentication_failed = Signal()
# sender: the key model; kwargs: old (the key replaced: its expires_at now the end of its grace
# period, or already deleted when there was none), new (the key made to replace it)
key_rotated = Signal()
# sender: KeyEvent; kwargs: event (a models.KeyEvent, once the transaction writing it commits)
key_event_recorded = Signal()
# sender: None; kwargs: kind (a keys.Credential, or None when the text is none of ours),
# outcome ("accepted", "rejected", "out_of_scope", "throttled", "unavailable"), reason (the
# refusal's own words for "rejected", else None), duration (seconds spent verifying). Sent once
# per request that presents our credential, by every entry point (http.verify_request).
credential_verified = Signal()
# sender: None; kwargs: hit (True: the key cache or process memory answered; False: the
# database had to). Sent by verification when a cache is in use.
key_cache_read = Signal()
