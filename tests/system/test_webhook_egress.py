"""The dispatcher's HTTP client against a real TLS receiver on loopback (issue 21): the
socket is pinned to the address the check judged, while the Host header, TLS SNI and
certificate verification keep the URL's host name. The name ``receiver.example`` resolves
to 127.0.0.1 through the client's own lookup; the test CA is trusted through SSL_CERT_FILE,
as a bank's own CA would be."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.notify.domain.addresses import Address
from services.notify.egress import AddressRefused, webhook_client

NAME = "receiver.example"
LOOPBACK = [ip_network("127.0.0.0/8")]


def _cert(subject: str, issuer_key: ec.EllipticCurvePrivateKey | None, issuer: x509.Name | None, *, ca: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


@dataclass
class TlsReceiver:
    """Answers 200 over TLS with a certificate for ``served_name``; records SNI and Host."""

    tmp: Path
    served_name: str
    snis: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    port: int = 0

    async def start(self, monkeypatch: pytest.MonkeyPatch) -> asyncio.Server:
        ca_key, ca = _cert("vcredit test CA", None, None, ca=True)
        key, cert = _cert(self.served_name, ca_key, ca.subject, ca=False)
        (self.tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (self.tmp / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        monkeypatch.setenv("SSL_CERT_FILE", str(self.tmp / "ca.pem"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tmp / "cert.pem", self.tmp / "key.pem")
        context.sni_callback = lambda sock, name, ctx: self.snis.append(name)  # type: ignore[assignment,misc]
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "host":
                    self.hosts.append(value.strip())
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def _to_loopback(host: str, port: int) -> tuple[Address, ...]:
    assert host == NAME
    return (ip_address("127.0.0.1"),)


@pytest.fixture
async def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TlsReceiver]:
    r = TlsReceiver(tmp_path, NAME)
    server = await r.start(monkeypatch)
    try:
        yield r
    finally:
        server.close()


async def test_the_connection_goes_to_the_judged_address_with_the_name_for_host_sni_and_certificate(
    receiver: TlsReceiver,
) -> None:
    async with webhook_client(LOOPBACK, timeout=10, max_connections=4, lookup=_to_loopback) as client:
        r = await client.post(f"https://{NAME}:{receiver.port}/hook", content=b"{}")
    assert r.status_code == 200
    assert receiver.snis == [NAME]
    assert receiver.hosts == [f"{NAME}:{receiver.port}"]


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The certificate is checked against the URL's name, not skipped for the pinned address.
    other = TlsReceiver(tmp_path, "other.example")
    server = await other.start(monkeypatch)
    try:
        async with webhook_client(LOOPBACK, timeout=10, max_connections=4, lookup=_to_loopback) as client:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await client.post(f"https://{NAME}:{other.port}/hook", content=b"{}")
        assert other.hosts == []
    finally:
        server.close()


async def test_a_name_resolving_to_loopback_outside_the_allow_list_is_not_connected(receiver: TlsReceiver) -> None:
    async with webhook_client([], timeout=10, max_connections=4, lookup=_to_loopback) as client:
        with pytest.raises(AddressRefused, match=re.escape(f"{NAME} is a loopback address")):
            await client.post(f"https://{NAME}:{receiver.port}/hook", content=b"{}")
    assert receiver.snis == [] and receiver.hosts == []
