"""A real HTTP(S) receiver on loopback, accounts with endpoints, sent messages, a movable clock.

def test_something(receiver: Receiver, world: World) -> None:
    receiver.answers += [500, 200]                 # then 200 for ever
    endpoint, secret = world.endpoint(receiver.url, ["message.opened"])
    deliverer = world.deliverer()                  # clock: world.now, move it by hand
    deliverer.run_once()
    assert receiver.requests[0].headers["webhook-id"]
"""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, insert, select

from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.ids import new_id, now_ms
from pixeltrail.platform.secretbox import SecretBox
from pixeltrail.platform.webhooks.delivery import WebhookDeliverer
from pixeltrail.platform.webhooks.endpoints import Endpoint, create_endpoint
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    campaign_steps,
    campaigns,
    contacts,
    mailboxes,
    messages,
    webhook_deliveries,
)
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.tokens import new_message_id

from ..conftest import SECRET
from ..dbs import DATABASES, Database, fresh_database

SENT_AT = 1_800_000_000_000


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers the statuses in `answers` in turn, then 200."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self) -> tuple[int, dict[str, str]]:
        with self.lock:
            answer = self.answers.pop(0) if self.answers else 200
        return answer if isinstance(answer, tuple) else (answer, {})


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                receiver.requests.append(Received("POST", self.path, headers, body))
            status, extra = receiver.next_answer()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: concurrent deliveries would be reset.
    request_queue_size = 128


@contextmanager
def receiving(tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A threaded HTTP server on a free loopback port (HTTPS with `tls`), stopped afterwards."""
    receiver = Receiver()
    server = _Server((host, 0), _handler(receiver))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    receiver.url = f"{scheme}://{host}:{server.server_address[1]}/hooks/pixeltrail?src=test"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def self_signed(tmp_path: Path, hostname: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only that certificate) for `hostname`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{hostname}.crt", tmp_path / f"{hostname}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


@dataclass
class World:
    """One account on a real database, with helpers; `now` is the deliverers' clock (ms)."""

    engine: Engine
    account_id: str
    box: SecretBox
    now: int = field(default_factory=now_ms)

    def clock(self) -> int:
        return self.now

    def endpoint(
        self, url: str, event_types: list[str], account_id: str | None = None
    ) -> tuple[Endpoint, str]:
        with write_transaction(self.engine) as conn:
            return create_endpoint(
                conn, account_id or self.account_id, url, event_types, self.box, allow_local=True
            )

    def deliverer(self, box: SecretBox | None = None, **options: Any) -> WebhookDeliverer:
        options = {"allow_local": True, "jitter": 0.0, "clock": self.clock, **options}
        return WebhookDeliverer(self.engine, box or self.box, **options)

    def deliveries(self) -> list[Any]:
        with self.engine.connect() as conn:
            query = select(webhook_deliveries).order_by(webhook_deliveries.c.created_at_ms)
            return list(conn.execute(query).all())

    def other_account(self, email: str = "bob@other.example") -> str:
        with write_transaction(self.engine) as conn:
            return create_account(conn, "Other", email)[0].id

    def sent_message(self, email: str = "reader@b.example") -> str:
        """A message this instance sent (with the rows it hangs from); returns its id."""
        ids = {kind: new_id(kind) for kind in ("mbx", "ct", "cmp", "stp")}
        message_id = new_message_id()
        with write_transaction(self.engine) as conn:
            account = self.account_id
            conn.execute(
                insert(mailboxes).values(
                    id=ids["mbx"], account_id=account, name="m", from_email="a@a.example",
                    from_name="A", smtp_url_encrypted=None, daily_limit=100, created_at_ms=0,
                )
            )  # fmt: skip
            conn.execute(
                insert(contacts).values(
                    id=ids["ct"], account_id=account, email=email, first_name="", last_name="",
                    company="", fields={}, created_at_ms=0, updated_at_ms=0,
                )
            )  # fmt: skip
            conn.execute(
                insert(campaigns).values(
                    id=ids["cmp"], account_id=account, name="c", mailbox_id=ids["mbx"],
                    status="active", schedule={}, track_opens=True, track_clicks=True,
                    track_text_links=True, tracking_domain_id=None, start_at_ms=None,
                    created_at_ms=0, updated_at_ms=0,
                )
            )  # fmt: skip
            conn.execute(
                insert(campaign_steps).values(
                    id=ids["stp"], campaign_id=ids["cmp"], position=1, subject="s", html="h",
                    text=None, delay_days=0,
                )
            )  # fmt: skip
            conn.execute(
                insert(messages).values(
                    id=message_id, account_id=account, campaign_id=ids["cmp"],
                    step_id=ids["stp"], contact_id=ids["ct"], mailbox_id=ids["mbx"],
                    status="sent", send_at_ms=SENT_AT, track_opens=True, track_clicks=True,
                    track_text_links=True, tracking_base_url="https://t.example", attempts=1,
                    sent_at_ms=SENT_AT, error=None, created_at_ms=0,
                )
            )  # fmt: skip
        return message_id


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        database.migrated()
        yield database


@pytest.fixture
def world(database: Database) -> World:
    with write_transaction(database.engine) as conn:
        account, _key = create_account(conn, "Acme", "alice@acme.example")
    return World(database.engine, account.id, SecretBox(KeyRing.parse(SECRET)))
