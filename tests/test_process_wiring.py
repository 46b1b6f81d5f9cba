"""The processes are wired in runtime/ alone: the layers below import neither it nor each other
upwards, and the processes that serve no HTTP start without the web apps."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pixeltrail

SOURCE = Path(pixeltrail.__file__).parent

# A package, and the packages its modules must not import.
FORBIDDEN = {
    "web": ["pixeltrail.sending", "pixeltrail.runtime", "pixeltrail.commands"],
    "recording": [
        "pixeltrail.platform",
        "pixeltrail.sending",
        "pixeltrail.web",
        "pixeltrail.runtime",
        "pixeltrail.commands",
    ],
    "platform": ["pixeltrail.web", "pixeltrail.runtime", "pixeltrail.commands"],
    "sending": ["pixeltrail.web", "pixeltrail.runtime", "pixeltrail.commands"],
    "store": ["pixeltrail.web", "pixeltrail.runtime", "pixeltrail.commands"],
    "runtime": ["pixeltrail.commands"],
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_does_not_import_the_layers_that_use_it(package: str) -> None:
    reaching = [
        f"{path.relative_to(SOURCE)} imports {module}"
        for path in sorted((SOURCE / package).rglob("*.py"))
        for module in sorted(_imports(path))
        if any(module == f or module.startswith(f"{f}.") for f in FORBIDDEN[package])
    ]
    assert reaching == []


def test_the_checks_see_imports() -> None:
    """The scan finds the imports it is meant to refuse (runtime/ imports all of these)."""
    imported = set().union(*(_imports(p) for p in (SOURCE / "runtime").glob("*.py")))
    assert {"pixeltrail.web.hosts", "pixeltrail.sending.worker"} <= imported
    assert "pixeltrail.platform.webhooks.events" in imported


@pytest.mark.parametrize("command", ["background", "worker"])
def test_the_processes_serving_no_http_start_without_the_web_apps(command: str) -> None:
    probe = (
        "import sys; from pixeltrail.cli import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'starlette', 'granian',"
        " 'uvicorn'} or m.startswith(('pixeltrail.web.api', 'pixeltrail.web.dashboard'))))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.splitlines()[-1] == "[]"
