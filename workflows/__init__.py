"""The workflows bundled with consultflow (YAML files, read with importlib.resources)."""
