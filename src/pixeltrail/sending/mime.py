"""The MIME message as sent: multipart/alternative, UTF-8, one-click unsubscribe headers.

Written directly rather than through `email.message`: the structure is always the same two
quoted-printable parts, and the stdlib's header objects cost more than everything else a
message needs. Headers that are not plain ASCII are RFC 2047 encoded by `email.header`.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate

CRLF = b"\r\n"


@dataclass(frozen=True)
class Envelope:
    message_id: str
    from_email: str
    from_name: str
    to_email: str
    to_name: str
    subject: str


def _header_text(value: str) -> str:
    """A header value safe for the wire: as is when short plain ASCII, else RFC 2047."""
    if value.isascii() and len(value) < 900 and "\r" not in value and "\n" not in value:
        return value
    return Header(value.replace("\r", " ").replace("\n", " "), "utf-8").encode(maxlinelen=76)


class UnsendableAddress(ValueError):
    """An address this sender cannot put on the wire (a non-ASCII local part needs SMTPUTF8)."""


def ascii_address(email: str) -> str:
    """The address with its domain in IDNA (punycode) form."""
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        raise UnsendableAddress(f"{email}: a non-ASCII mailbox name needs SMTPUTF8")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}" if not domain.isascii() else email
    except UnicodeError:
        raise UnsendableAddress(f"{email}: the domain is not a valid IDNA name") from None


def _address(name: str, email: str) -> str:
    display = name.replace("\r", " ").replace("\n", " ")
    return formataddr((display, ascii_address(email)), charset="utf-8")


def _quoted_printable(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", CRLF)


def build_message(envelope: Envelope, html: str, text: str, unsubscribe_url: str) -> bytes:
    """RFC 5322 bytes with CRLF line ends, ready for SMTP."""
    sender = ascii_address(envelope.from_email)  # headers are ASCII: an IDN domain in punycode
    domain = sender.rpartition("@")[2]
    boundary = f"=_pt_{secrets.token_hex(12)}"
    # RFC 2369 and RFC 8058: a one-click HTTPS link (POST) and a mailto fallback.
    mailto = f"mailto:{sender}?subject=unsubscribe"
    headers = [
        f"Message-ID: <{envelope.message_id}@{domain}>",
        f"Date: {formatdate(usegmt=True)}",
        f"From: {_address(envelope.from_name, envelope.from_email)}",
        f"To: {_address(envelope.to_name, envelope.to_email)}",
        f"Subject: {_header_text(envelope.subject)}",
        "MIME-Version: 1.0",
        f"List-Unsubscribe: <{unsubscribe_url}>,\r\n <{mailto}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    part = "Content-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    delimiter = f"--{boundary}".encode()
    return b"".join(
        [
            "\r\n".join(headers).encode("ascii"),
            CRLF + CRLF,
            delimiter + CRLF,
            part.format("plain").encode() + CRLF + CRLF,
            _quoted_printable(text),
            CRLF + delimiter + CRLF,
            part.format("html").encode() + CRLF + CRLF,
            _quoted_printable(html),
            CRLF + delimiter + b"--" + CRLF,
        ]
    )
