"""A minimal Django project that serves one trivial DRF view through each authentication scheme."""
