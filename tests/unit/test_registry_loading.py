"""The registry loads a command's module of use cases when it is needed, and is the same whatever loaded first.

A CLI command imports only its own module of use cases (a command starts about 55 ms sooner); the
server, its OpenAPI document and `lookup` of any other name load the rest. Each check runs in a fresh
interpreter, since this test process has long since loaded every module.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PREFIX = "consultflow.services.commands."


def _fresh(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_cli_group_loads_only_its_own_module_of_use_cases() -> None:
    """`consultflow round ...` loads the consultations module and the registry's core, no other."""
    loaded = _fresh(
        "import json, sys; import consultflow.cli.rounds; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({PREFIX!r}))))"
    )
    assert loaded == [PREFIX + "consultations", PREFIX + "core"]


def test_the_registry_is_whole_and_in_one_order_whichever_module_loaded_first() -> None:
    """The server's routes come from `registry()`: every command, in the same order, even after a CLI import."""
    listing = "import json; from consultflow.services.commands import registry; print(json.dumps(list(registry())))"
    plain = _fresh(listing)
    after_one = _fresh("import consultflow.services.commands.workflows; " + listing)
    assert isinstance(plain, list) and len(plain) > 70
    assert after_one == plain
    assert "workflow.list" in plain and "round.open" in plain


def test_a_command_of_a_module_not_loaded_yet_is_found_by_name() -> None:
    """`lookup` of a name whose module nothing imported loads that module rather than refusing the name."""
    found = _fresh(
        "import json; from consultflow.services.commands.core import lookup; "
        "print(json.dumps(lookup('audit.verify').name))"
    )
    assert found == "audit.verify"
