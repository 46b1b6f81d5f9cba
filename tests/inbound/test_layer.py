"""The inbound package stays pure: it imports no web, storage, sending or runtime code, so it
can be tested and reused without a database or a server."""

from __future__ import annotations

import ast
from pathlib import Path

import pixeltrail.inbound

PACKAGE = Path(pixeltrail.inbound.__file__).parent
ALLOWED = ("pixeltrail.inbound", "pixeltrail.tracking")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_inbound_imports_only_itself_and_tracking_of_pixeltrail() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 4
    for path in modules:
        ours = {name for name in _imports(path) if name.split(".")[0] == "pixeltrail"}
        outside = {name for name in ours if not name.startswith(ALLOWED)}
        assert not outside, f"{path.name} imports {sorted(outside)}"
