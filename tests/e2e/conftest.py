"""Fixtures for whole-product tests: a real DNS server, a real SMTP server, real databases."""

from __future__ import annotations

from ..domains.conftest import database, dns  # noqa: F401 - fixtures used by these tests
from ..sending.conftest import smtp_server  # noqa: F401 - fixtures used by these tests
