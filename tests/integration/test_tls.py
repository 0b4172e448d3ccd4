"""Encryption in transit: ``s3.require_tls`` and HTTPS endpoints with a custom CA bundle.

The HTTPS endpoint is a small TLS-terminating relay on 127.0.0.1 in front of
the local moto server, with a CA and a server certificate this module makes
(cryptography's x509 builder).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import socketserver
import ssl
import threading
from urllib.parse import urlsplit

import pytest

from emrfs import EmrFileSystem
from emrfs.config import S3Options
from emrfs.errors import ConfigurationError
from emrfs.s3.client import S3Client

pytestmark = pytest.mark.integration


def _certificates(directory):
    """A CA, and a certificate for 127.0.0.1 it signed; returns (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emrfs test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    files[0].write_bytes(ca.public_bytes(pem))
    files[1].write_bytes(cert.public_bytes(pem))
    files[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tuple(str(f) for f in files)


def _pump(src, dst) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _TlsRelay(socketserver.BaseRequestHandler):
    """Terminate TLS, relay the bytes to the plain-HTTP upstream."""

    def handle(self) -> None:
        try:
            tls = self.server.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust us hangs up during the handshake
        upstream = socket.create_connection(self.server.upstream)
        back = threading.Thread(target=_pump, args=(upstream, tls), daemon=True)
        back.start()
        _pump(tls, upstream)
        back.join(timeout=30)
        upstream.close()
        tls.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def tls_endpoint(emrfs_endpoint, tmp_path_factory):
    ca, cert, key = _certificates(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _TlsRelay)
    server.context = context
    up = urlsplit(emrfs_endpoint)
    server.upstream = (up.hostname, up.port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", ca
    server.shutdown()
    server.server_close()


def test_require_tls_refuses_plain_http(emrfs_endpoint):
    with pytest.raises(ConfigurationError, match="require_tls"):
        EmrFileSystem(endpoint_url=emrfs_endpoint, require_tls=True, skip_instance_cache=True)
    with pytest.raises(ConfigurationError, match="require_tls"):
        EmrFileSystem(
            **{
                "fs.s3.endpoint": emrfs_endpoint,
                "fs.s3.requireTls": "true",
                "skip_instance_cache": True,
            }
        )
    with pytest.raises(ConfigurationError, match="https"):  # the client checks it too
        S3Client(S3Options(endpoint_url=emrfs_endpoint, require_tls=True))


def test_https_endpoint_with_custom_ca_bundle(tls_endpoint, emrfs_s3, emrfs_bucket):
    url, ca = tls_endpoint
    fs = EmrFileSystem(endpoint_url=url, ca_bundle=ca, require_tls=True, skip_instance_cache=True)
    fs.pipe_file(f"{emrfs_bucket}/over-tls", b"in transit")
    assert fs.cat_file(f"{emrfs_bucket}/over-tls") == b"in transit"
    assert fs.ls(emrfs_bucket, detail=False) == [f"{emrfs_bucket}/over-tls"]
    # side channel: the object arrived (over the plain local endpoint)
    assert emrfs_s3.get_object(Bucket=emrfs_bucket, Key="over-tls")["Body"].read() == b"in transit"


def test_cse_kms_over_tls_uses_the_ca_bundle_for_kms_too(
    tls_endpoint, emrfs_endpoint, emrfs_bucket
):
    import boto3

    url, ca = tls_endpoint
    key_id = boto3.client("kms", endpoint_url=emrfs_endpoint, region_name="us-east-1").create_key()[
        "KeyMetadata"
    ]["KeyId"]
    fs = EmrFileSystem(
        endpoint_url=url,
        ca_bundle=ca,
        require_tls=True,
        skip_instance_cache=True,
        cse={"enabled": True, "kms_key_id": key_id},
    )
    fs.pipe_file(f"{emrfs_bucket}/cse", b"sealed")
    assert fs.cat_file(f"{emrfs_bucket}/cse") == b"sealed"


def test_https_endpoint_without_the_ca_is_refused(tls_endpoint, emrfs_bucket):
    url, _ = tls_endpoint
    fs = EmrFileSystem(endpoint_url=url, skip_instance_cache=True, max_attempts=1)
    with pytest.raises(OSError, match=r"(?i)certificate|ssl"):
        fs.pipe_file(f"{emrfs_bucket}/never", b"x")


def test_diff_and_sync_walk_the_bucket_over_tls_with_the_ca_bundle(
    tls_endpoint, emrfs_endpoint, emrfs_s3, emrfs_bucket
):
    """The sync walker lists through the S3 transport, so ``ca_bundle`` applies to it too
    (it used to open its own client, which did not trust the CA)."""
    import asyncio
    import uuid

    from emrfs import config
    from emrfs.consistency import sync as S
    from emrfs.consistency.dynamodb import DynamoDBMetadataStore

    url, ca = tls_endpoint
    options = config.load(
        {
            "endpoint_url": url,
            "ca_bundle": ca,
            "consistency.dynamodb_endpoint": emrfs_endpoint,
            "consistency.table_name": f"emrfs-test-{uuid.uuid4().hex[:12]}",
        }
    )
    emrfs_s3.put_object(Bucket=emrfs_bucket, Key="d/out-of-band", Body=b"12345")
    store = DynamoDBMetadataStore.from_options(options)
    try:
        walker = S.AioS3Walker.from_options(options)
        report = asyncio.run(S.diff(store, walker, emrfs_bucket))
        assert {i.path: i.status for i in report.differences} == {
            f"{emrfs_bucket}/d": "s3_only",
            f"{emrfs_bucket}/d/out-of-band": "s3_only",
        }
        asyncio.run(S.sync(store, walker, emrfs_bucket))
        # side channel: the rows are in the table
        assert store.get(f"{emrfs_bucket}/d/out-of-band").size == 5
        assert asyncio.run(S.diff(store, walker, emrfs_bucket)).clean
    finally:
        store.delete_table(wait=False)
