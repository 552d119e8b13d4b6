"""Helpers shared by unit and integration tests: stand-ins for outside services."""
