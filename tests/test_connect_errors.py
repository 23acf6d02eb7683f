"""A connection that fails says what failed, through the real `quorum ask`: TLS against a plain
HTTP port, plain HTTP against a TLS port, a self-signed certificate, a refused port and a name
that does not resolve; each with a hint, and TLS failures are not retried. The TLS server is a
real one on 127.0.0.1 with a certificate the test makes."""

from __future__ import annotations

import datetime
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ConfigWriter
from tests.test_cli import quorum


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_port(tmp_path: Path) -> Iterator[int]:
    """A TLS server with a self-signed certificate: it completes handshakes, then closes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass  # the client refused the certificate, or spoke plain HTTP

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def ask(write_config: ConfigWriter, base_url: str) -> dict[str, Any]:
    config = write_config(
        models=[
            {
                "name": "m",
                "provider": "openai",
                "model": "m",
                "base_url": base_url,
                "api_key": "test-key-123456",
                "max_retries": 2,
            }
        ]
    )
    done = quorum("ask", "hi", "--json", "--no-history", "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (response,) = json.loads(done.stdout)["responses"]
    assert response["ok"] is False
    return dict(response)


@pytest.fixture
def http_port() -> Iterator[int]:
    """A plain HTTP server (the standard library's), which answers a TLS hello with a 400."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_https_against_a_plain_http_port_says_tls_and_points_to_http(
    http_port: int, write_config: ConfigWriter
) -> None:
    response = ask(write_config, f"https://127.0.0.1:{http_port}/v1")
    assert f"TLS handshake with 127.0.0.1:{http_port} failed" in response["error"]
    assert "use http:// in base_url" in response["error"]
    assert response["attempts"] == 1  # a retry would fail the same way


def test_a_self_signed_certificate_is_named_as_such(
    tls_port: int, write_config: ConfigWriter
) -> None:
    response = ask(write_config, f"https://127.0.0.1:{tls_port}/v1")
    assert f"certificate verification failed for 127.0.0.1:{tls_port}" in response["error"]
    assert "self-signed" in response["error"] and "SSL_CERT_FILE" in response["error"]
    assert response["attempts"] == 1


def test_plain_http_against_a_tls_port_points_to_https(
    tls_port: int, write_config: ConfigWriter
) -> None:
    response = ask(write_config, f"http://127.0.0.1:{tls_port}/v1")
    assert "closed the connection before answering" in response["error"]
    assert "use https:// in base_url" in response["error"]


def test_a_refused_port_and_an_unknown_host_say_which(write_config: ConfigWriter) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = ask(write_config, f"http://127.0.0.1:{port}/v1")
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in refused["error"]
    assert "is the server running" in refused["error"]
    unknown = ask(write_config, "http://no-such-host.invalid/v1")
    assert "unknown host no-such-host.invalid: the name does not resolve" in unknown["error"]
