"""Arize Phoenix's API-key model for Django and DRF: system keys, user keys, admin secret."""

__version__ = "0.1.0"
