"""A real IMAP server for tests: Debian's Dovecot on loopback, its configuration, users and
maildirs in a temporary folder, started in the foreground and stopped after."""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = os.environ.get("PIXELTRAIL_TEST_DOVECOT", "/usr/sbin/dovecot")
DOVEADM = os.environ.get("PIXELTRAIL_TEST_DOVEADM", "/usr/bin/doveadm")
INSTALL_HINT = "Debian: apt-get install dovecot-imapd (make test installs it)"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{users}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
auth_mechanisms = plain login
disable_plaintext_auth = no
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_location = maildir:~/Maildir
# Tests wait for IDLE: check the mailbox every second, not every 30.
mailbox_idle_check_interval = 1 secs
# A wrong password answers at once (the default waits 2 seconds).
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class ImapServer:
    """A running Dovecot: `port` speaks plain IMAP, `tls_port` IMAP over TLS with a certificate
    for 127.0.0.1 that `tls_context()` trusts. One user, `user` with `password`."""

    root: Path
    port: int
    tls_port: int
    user: str = "ana@acme.example"
    password: str = "correct horse battery staple"
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stderr: BinaryIO | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root / "cert.pem"))

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def doveadm(self, *args: str, data: bytes | None = None) -> str:
        done = subprocess.run(
            [DOVEADM, "-c", str(self.config), *args],
            input=data,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def deliver(self, raw: bytes, mailbox: str = "INBOX") -> None:
        """Put a message into the user's mailbox the way a delivery agent would (not over IMAP)."""
        self.doveadm("save", "-u", self.user, "-m", mailbox, data=raw)

    def drop_connections(self) -> None:
        """Disconnect every IMAP session of the user, as a server restart or a timeout would."""
        self.doveadm("kick", self.user)

    def set_uid_validity(self, mailbox: str = "INBOX", uid_validity: int | None = None) -> int:
        """Give a mailbox a new UIDVALIDITY (as when a mailbox is recreated or restored): every
        UID a client kept for it is void. Returns the new value."""
        current = self.uid_validity(mailbox)
        new = uid_validity if uid_validity is not None else current + 1
        self.doveadm("mailbox", "update", "-u", self.user, "--uid-validity", str(new), mailbox)
        return new

    def uid_validity(self, mailbox: str = "INBOX") -> int:
        out = self.doveadm(
            "-f", "flow", "mailbox", "status", "-u", self.user, "uidvalidity", mailbox
        )
        return int(out.strip().split("=")[-1])

    def recreate_mailbox(self, mailbox: str) -> None:
        """Delete a (non-INBOX) mailbox with its messages and create it again."""
        self.doveadm("mailbox", "delete", "-u", self.user, mailbox)
        self.doveadm("mailbox", "create", "-u", self.user, mailbox)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.stderr is not None:
            self.stderr.close()


def start_imap_server() -> ImapServer:
    """Start Dovecot on two free loopback ports; raises RuntimeError with its log when it does
    not answer within 15 seconds."""
    if not Path(DOVECOT).exists():
        raise RuntimeError(f"Dovecot is not installed at {DOVECOT}: {INSTALL_HINT}")
    # Not under pytest's own temporary folder: Dovecot's users must be able to enter it.
    root = Path(tempfile.mkdtemp(prefix="pixeltrail-imap-"))
    root.chmod(0o755)
    uid, gid, users = _accounts()
    server = ImapServer(root=root, port=_free_port(), tls_port=_free_port())
    _write_certificate(root)
    (root / "passwd").write_text(f"{server.user}:{{PLAIN}}{server.password}::::::\n")
    home = root / "home" / server.user
    home.mkdir(parents=True)
    for path in (root / "home", home):
        os.chown(path, uid, gid)
    server.config.write_text(
        _CONFIG.format(
            root=root, users=users, uid=uid, gid=gid, port=server.port, tls_port=server.tls_port
        )
    )
    server.stderr = (root / "stderr.log").open("wb")
    server.process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(server.config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=server.stderr,
    )
    try:
        _wait_for_greeting(server)
    except Exception:
        server.stop()
        raise
    return server


def remove_imap_server(server: ImapServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def _accounts() -> tuple[int, int, str]:
    """The uid and gid owning the mail, and the users Dovecot runs its processes as: as root,
    Debian's dovenull (login) and dovecot (internal) users and nobody for the mail; otherwise
    the current user for everything."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        users = "default_login_user = dovenull\ndefault_internal_user = dovecot"
        return nobody.pw_uid, nobody.pw_gid, users
    me = pwd.getpwuid(os.geteuid())
    users = f"default_login_user = {me.pw_name}\ndefault_internal_user = {me.pw_name}"
    return me.pw_uid, me.pw_gid, users


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_greeting(server: ImapServer) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            stderr = (server.root / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"Dovecot exited: {stderr}{server.log()}")
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"Dovecot did not answer on port {server.port}: {server.log()}")


def _write_certificate(root: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path = root / "key.pem"
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
