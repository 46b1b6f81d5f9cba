"""Settings: read once from the environment at start and passed in, each with a working default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from pixeltrail.keyfile import load_or_create_key
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import TokenSigner

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class ConfigError(ValueError):
    """A setting with a value that cannot work; the message names the variable."""


def _tracking_scheme(value: str) -> str:
    if value not in {"http", "https"}:
        raise ConfigError(f"PIXELTRAIL_TRACKING_SCHEME is http or https, not {value!r}")
    return value


HTTP_SERVERS = ("granian", "uvicorn")


def _http_server(value: str) -> str:
    value = value.strip().lower() or HTTP_SERVERS[0]
    if value not in HTTP_SERVERS:
        raise ConfigError(f"PIXELTRAIL_HTTP_SERVER is granian or uvicorn, not {value!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    raise ConfigError(f"{name} is 1 or 0, not {value!r}")


@dataclass(frozen=True)
class Settings:
    """Every setting, with the environment variable that sets it.

    - data_dir (PIXELTRAIL_DATA_DIR): where the key file and local data live;
      default the per-user data folder.
    - secret_keys (PIXELTRAIL_SECRET_KEY): comma-separated secrets, the first signs and all
      verify; unset means a key file created on first use in the data directory.
    - base_url (PIXELTRAIL_BASE_URL): the instance's own address for pixels and links.
    - database_url (PIXELTRAIL_DATABASE_URL): SQLAlchemy URL; default a SQLite file in the
      data directory (WAL mode). PostgreSQL: postgresql+psycopg://user@host/db.
    - trusted_proxies (PIXELTRAIL_TRUSTED_PROXIES): comma-separated addresses or networks
      whose X-Forwarded-For is believed; default none.
    - cname_target (PIXELTRAIL_CNAME_TARGET): the hostname custom tracking domains point
      their CNAME at; default the host of the base URL.
    - dns_servers (PIXELTRAIL_DNS_SERVERS): comma-separated host:port resolvers for domain
      verification; default the system's.
    - tracking_scheme (PIXELTRAIL_TRACKING_SCHEME): scheme of links on custom tracking
      domains, https (default) or http (local testing).
    - webhooks_allow_local (PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL): 1 lets webhook endpoints be on
      loopback and private addresses, and loopback ones use plain http (local testing);
      default 0: https to public addresses only.
    - mail_allow_local (PIXELTRAIL_MAIL_ALLOW_LOCAL): 1 lets mailboxes' mail servers be on
      loopback and private addresses (a relay on this host or its network) for every mail
      server the instance connects to; default 0: public addresses only. Link-local ones
      (cloud metadata) are refused either way.
    - http_server (PIXELTRAIL_HTTP_SERVER): what serves HTTP in `pixeltrail serve`, granian
      (default: less CPU per request) or uvicorn; both run the same app in one process.
    """

    data_dir: Path
    secret_keys: str | None
    base_url: str
    database_url: str
    trusted_proxies: tuple[str, ...] = ()
    cname_target: str = ""
    dns_servers: tuple[str, ...] = ()
    tracking_scheme: str = "https"
    webhooks_allow_local: bool = False
    mail_allow_local: bool = False
    http_server: str = HTTP_SERVERS[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = env.get("PIXELTRAIL_DATA_DIR") or platformdirs.user_data_dir("pixeltrail")
        proxies = env.get("PIXELTRAIL_TRUSTED_PROXIES", "")
        return cls(
            data_dir=Path(data_dir),
            secret_keys=env.get("PIXELTRAIL_SECRET_KEY") or None,
            base_url=env.get("PIXELTRAIL_BASE_URL") or DEFAULT_BASE_URL,
            database_url=env.get("PIXELTRAIL_DATABASE_URL")
            or f"sqlite:///{Path(data_dir) / 'pixeltrail.db'}",
            trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
            cname_target=env.get("PIXELTRAIL_CNAME_TARGET", ""),
            dns_servers=tuple(
                s.strip() for s in env.get("PIXELTRAIL_DNS_SERVERS", "").split(",") if s.strip()
            ),
            tracking_scheme=_tracking_scheme(env.get("PIXELTRAIL_TRACKING_SCHEME", "https")),
            webhooks_allow_local=_flag(env, "PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL"),
            mail_allow_local=_flag(env, "PIXELTRAIL_MAIL_ALLOW_LOCAL"),
            http_server=_http_server(env.get("PIXELTRAIL_HTTP_SERVER", "")),
        )

    def key_ring(self) -> KeyRing:
        if self.secret_keys is not None:
            try:
                return KeyRing.parse(self.secret_keys)
            except ValueError as exc:
                raise ConfigError(f"PIXELTRAIL_SECRET_KEY: {exc}") from None
        try:
            secret = load_or_create_key(self.data_dir)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"PIXELTRAIL_DATA_DIR: cannot use the key file: {exc}") from None
        return KeyRing.from_secrets([secret])

    def signer(self) -> TokenSigner:
        return TokenSigner(self.key_ring())

    def link_builder(self, base_url: str | None = None) -> LinkBuilder:
        try:
            return LinkBuilder(base_url or self.base_url, self.signer())
        except ValueError as exc:
            raise ConfigError(f"base URL: {exc}") from None

    @property
    def instance_host(self) -> str:
        """The host (no port) of the base URL: the instance's own tracking host."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def cname_host(self) -> str:
        """What a custom tracking domain's CNAME must point at."""
        return (self.cname_target or self.instance_host).rstrip(".").lower()
