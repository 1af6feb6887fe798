"""How a client reaches NATS: the servers, the credentials it shows and the TLS it speaks.

Every authentication nats-server offers is supported: a user and password (settings, or the
URL's ``user:password@``), a token (the URL's ``token@``), an nkey seed file, and a JWT
``.creds`` file (operator mode, e.g. Synadia Cloud). TLS is used for ``tls://`` URLs or as soon
as a CA, certificate or key file is set; a certificate and key also serve for mutual TLS.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class NatsAccess:
    servers: str
    user: str = ""
    password: str = ""
    creds_file: Path | None = None
    nkey_seed_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def servers_list(self) -> list[str]:
        return [s.strip() for s in self.servers.split(",") if s.strip()]

    def redacted(self) -> str:
        """The servers without any credentials in them: what may be logged."""
        return ",".join(_without_userinfo(url) for url in self.servers_list())

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca_file or self.tls_cert_file or self.tls_key_file) or any(
            url.startswith("tls://") for url in self.servers_list())

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.connect`` (besides behaviour such as reconnects)."""
        options: dict[str, Any] = {"servers": self.servers_list()}
        if self.user:
            options["user"] = self.user
        if self.password:
            options["password"] = self.password
        if self.creds_file:
            options["user_credentials"] = str(self.creds_file)
        if self.nkey_seed_file:
            options["nkeys_seed"] = str(self.nkey_seed_file)
        if self.uses_tls:
            options["tls"] = self.tls_context()
        return options

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the server against the CA file (else the system's trust store) and its
        host name; presents the client certificate when one is set."""
        context = ssl.create_default_context(
            cafile=str(self.tls_ca_file) if self.tls_ca_file else None)
        if self.tls_cert_file:
            context.load_cert_chain(
                str(self.tls_cert_file), str(self.tls_key_file) if self.tls_key_file else None)
        return context


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
