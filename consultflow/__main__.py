"""`python -m consultflow`, the same as the `consultflow` command."""

from consultflow.cli.main import main

main(prog_name="consultflow")
