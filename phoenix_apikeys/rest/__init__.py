"""The Phoenix-compatible key-management REST API: views, serializers and the schema."""
