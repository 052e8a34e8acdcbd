"""Ship `migrations/` and `workflows/` inside the package, found with importlib.resources.

They install as `consultflow.migrations` and `consultflow.workflows`.

The metadata and dependencies live in pyproject.toml (PEP 621), the tools' settings in setup.cfg;
pyproject.toml alone cannot add these mapped packages to the ones find_packages discovers.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["consultflow", "consultflow.*"]),
        "consultflow.migrations",
        "consultflow.migrations.versions",
        "consultflow.workflows",
    ],
    package_dir={"consultflow.migrations": "migrations", "consultflow.workflows": "workflows"},
    package_data={
        "consultflow.migrations": ["script.py.mako"],
        "consultflow.workflows": ["*.yaml"],
        "consultflow.web": ["templates/*.html", "static/*.css"],
    },
)
