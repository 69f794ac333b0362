"""Django admin pages for system and user keys."""
