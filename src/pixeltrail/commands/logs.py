"""The processes' logs: to stderr, at the level asked (`--log-level`), each line naming its
process when there are two."""

from __future__ import annotations

import logging

LOG_LEVELS = ["debug", "info", "warning", "error"]


def log_to_stderr(level: str, process: str = "") -> None:
    logging.basicConfig(
        level=level.upper(), format=f"%(asctime)s %(levelname)s {process}%(name)s: %(message)s"
    )
