"""Reaching a production NATS: user and password, nkey, JWT credentials and (mutual) TLS, each
against a real nats-server configured for it."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nkeys
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nats.errors import Error as NatsError

from shared.bus import Bus
from shared.config import BaseServiceSettings
from shared.natsaccess import NatsAccess
from shared.natsd import free_port, nats_server_binary

NatsServer = Callable[[str], str]


@pytest.fixture
def nats_with(tmp_path: Path) -> Iterator[NatsServer]:
    """Starts a nats-server (JetStream on) with the given configuration; returns its
    ``host:port``."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(config: str) -> str:
        port = free_port()
        path = tmp_path / f"nats-{port}.conf"
        store = tmp_path / f"store-{port}"
        path.write_text(f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{store}" }}\n'
                        f'{config}\n')
        with open(tmp_path / f"nats-{port}.log", "wb") as log:
            processes.append(subprocess.Popen([nats_server_binary(), "-c", str(path)],
                                              stdout=log, stderr=log))
        deadline = time.monotonic() + 10
        while b"Server is ready" not in (tmp_path / f"nats-{port}.log").read_bytes():
            assert processes[-1].poll() is None, (tmp_path / f"nats-{port}.log").read_text()
            assert time.monotonic() < deadline, "nats-server did not start"
            time.sleep(0.05)
        return f"127.0.0.1:{port}"

    yield start
    for process in processes:
        process.kill()
        process.wait()


async def connects(access: NatsAccess) -> bool:
    """Backstop's own connection (the bus, as the services open it) works."""
    bus = Bus(access)
    await asyncio.wait_for(bus.connect(), timeout=10)
    connected = bus.connected
    await bus.close()
    return connected


async def refused(access: NatsAccess) -> bool:
    """The same options, tried once (the bus would retry for ever), are refused."""
    try:
        client = await nats.connect(**access.connect_options(), allow_reconnect=False,
                                    max_reconnect_attempts=0, connect_timeout=3)
    except (NatsError, OSError):
        return True
    await client.close()
    return False


async def test_user_and_password_from_settings_or_url(nats_with: NatsServer) -> None:
    address = nats_with('authorization { user: "backstop", password: "s3cret-pw" }')
    settings = BaseServiceSettings(nats_url=f"nats://{address}", nats_user="backstop",
                                   nats_password="s3cret-pw")
    assert await connects(settings.nats_access())
    assert await connects(NatsAccess(f"nats://backstop:s3cret-pw@{address}"))
    assert await refused(NatsAccess(f"nats://{address}"))
    assert await refused(NatsAccess(f"nats://{address}", user="backstop", password="wrong"))
    assert NatsAccess(f"nats://backstop:s3cret-pw@{address}").redacted() == f"nats://{address}"


async def test_nkey_seed_file(nats_with: NatsServer, tmp_path: Path) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    address = nats_with(f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}')
    seed_file = tmp_path / "backstop.nk"
    seed_file.write_bytes(seed)
    settings = BaseServiceSettings(nats_url=f"nats://{address}", nats_nkey_seed_file=seed_file)
    assert await connects(settings.nats_access())
    assert await refused(NatsAccess(f"nats://{address}"))


async def test_jwt_credentials_file(nats_with: NatsServer, tmp_path: Path) -> None:
    """Operator mode, as Synadia Cloud or an `nsc`-managed server runs it."""
    operator, system, account, user = (
        nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), p)))
        for p in (nkeys.PREFIX_BYTE_OPERATOR, nkeys.PREFIX_BYTE_ACCOUNT,
                  nkeys.PREFIX_BYTE_ACCOUNT, nkeys.PREFIX_BYTE_USER))
    system_id = system.public_key.decode()
    operator_jwt = _jwt(operator, operator, {"type": "operator", "version": 2,
                                             "system_account": system_id})
    system_jwt = _jwt(operator, system, {"type": "account", "version": 2})
    account_jwt = _jwt(operator, account, {"type": "account", "version": 2, "limits": {
        "subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1, "data": -1,
        "payload": -1, "wildcards": True, "mem_storage": -1, "disk_storage": -1,
        "streams": -1, "consumer": -1}})
    user_jwt = _jwt(account, user, {"type": "user", "version": 2, "pub": {}, "sub": {},
                                    "subs": -1, "data": -1, "payload": -1})
    account_id = account.public_key.decode()
    address = nats_with(f'operator: "{operator_jwt}"\nsystem_account: "{system_id}"\n'
                        'resolver: MEMORY\nresolver_preload: {\n'
                        f'  {system_id}: "{system_jwt}"\n  {account_id}: "{account_jwt}"\n}}')
    creds = tmp_path / "backstop.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n"
        "------END USER NKEY SEED------\n")
    settings = BaseServiceSettings(nats_url=f"nats://{address}", nats_creds_file=creds)
    assert await connects(settings.nats_access())
    assert await refused(NatsAccess(f"nats://{address}"))


async def test_tls_with_a_private_ca_and_mutual_tls(nats_with: NatsServer,
                                                    tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    tls = (f'tls {{ cert_file: "{pki["server.pem"]}", key_file: "{pki["server.key"]}", '
           f'ca_file: "{pki["ca.pem"]}"')
    address = nats_with(tls + " }")
    settings = BaseServiceSettings(nats_url=f"tls://{address}", nats_tls_ca_file=pki["ca.pem"])
    assert await connects(settings.nats_access())
    assert await refused(NatsAccess(f"tls://{address}"))  # not in the system trust store
    assert await connects(NatsAccess(f"nats://{address}", tls_ca_file=pki["ca.pem"]))

    mutual = nats_with(tls + ", verify: true }")
    with_cert = BaseServiceSettings(
        nats_url=f"tls://{mutual}", nats_tls_ca_file=pki["ca.pem"],
        nats_tls_cert_file=pki["client.pem"], nats_tls_key_file=pki["client.key"])
    assert await connects(with_cert.nats_access())
    assert await refused(NatsAccess(f"tls://{mutual}", tls_ca_file=pki["ca.pem"]))


# --- JWTs and certificates, as nsc and a CA would issue them --------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(issuer: Any, subject: Any, nats_claims: dict[str, Any]) -> str:
    claims: dict[str, Any] = {"iat": int(time.time()), "iss": issuer.public_key.decode(),
                              "name": "backstop", "sub": subject.public_key.decode(),
                              "nats": nats_claims}
    claims["jti"] = base64.b32encode(
        hashlib.sha256(json.dumps(claims).encode()).digest()).decode().rstrip("=")
    signing_input = (_b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    return signing_input + "." + _b64(issuer.sign(signing_input.encode()))


def _pki(directory: Path) -> dict[str, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backstop test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    files = {"ca.pem": ca.public_bytes(serialization.Encoding.PEM)}
    for name, san in (("server", x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])),
            ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1)))
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        files[f"{name}.pem"] = builder.sign(ca_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.PEM)
        files[f"{name}.key"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
    paths = {}
    for filename, content in files.items():
        (directory / filename).write_bytes(content)
        paths[filename] = directory / filename
    return paths
