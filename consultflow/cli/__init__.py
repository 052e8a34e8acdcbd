"""Thin click commands over the services."""
