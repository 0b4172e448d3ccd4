"""``emrfs gateway`` as a process (token, clean SIGTERM) and TLS (``swebhdfs://``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import requests
from fsspec.implementations.dirfs import DirFileSystem

from emrfs.gateway import serve_in_thread, ssl_context

ROOT = Path(__file__).resolve().parents[2]


def test_cli_serves_with_token_and_stops_on_sigterm(tmp_path):
    (tmp_path / "served" / "bucket").mkdir(parents=True)
    (tmp_path / "token").write_text("t0ken\n")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from emrfs.cli import main; sys.exit(main())",
            "--json",
            "gateway",
            "--port",
            "0",
            "--token-file",
            str(tmp_path / "token"),
            "--serve",
            f"file://{tmp_path / 'served'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        started = json.loads(line)
        assert started["hadoop_url"].startswith("webhdfs://127.0.0.1:")
        url = started["url"]
        assert requests.get(f"{url}/webhdfs/v1/bucket?op=GETFILESTATUS").status_code == 401
        ok = requests.get(f"{url}/webhdfs/v1/bucket?op=LISTSTATUS&delegation=t0ken")
        assert ok.status_code == 200 and ok.json() == {"FileStatuses": {"FileStatus": []}}
        # an append session still open at shutdown is committed, not lost
        target = f"{url}/webhdfs/v1/bucket/log.txt"
        assert requests.put(f"{target}?op=CREATE&delegation=t0ken").status_code == 201
        assert requests.post(f"{target}?op=APPEND&delegation=t0ken", data=b"kept").ok
        assert (tmp_path / "served" / "bucket" / "log.txt").read_bytes() == b""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert (tmp_path / "served" / "bucket" / "log.txt").read_bytes() == b"kept"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_tls_round_trip_with_redirects_on_https(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # they override session.verify
        monkeypatch.delenv(name, raising=False)
    cert, key = _self_signed(tmp_path)
    (tmp_path / "bucket").mkdir()
    fs = DirFileSystem(str(tmp_path), fs=fsspec.filesystem("file"))
    with serve_in_thread(fs, tls=ssl_context(cert, key), token="tls-secret") as gateway:
        assert gateway.url.startswith("https://")
        client = fsspec.filesystem(
            "webhdfs",
            host="127.0.0.1",
            port=gateway.port,
            use_https=True,
            session_verify=cert,
            token="tls-secret",
            skip_instance_cache=True,
        )
        client.pipe("/bucket/secure.txt", b"over tls")
        assert client.cat("/bucket/secure.txt") == b"over tls"
        step = requests.get(
            f"{gateway.url}/webhdfs/v1/bucket/secure.txt?op=OPEN&delegation=tls-secret",
            verify=cert,
            allow_redirects=False,
        )
        assert step.headers["Location"].startswith("https://127.0.0.1:")
    with pytest.raises(ValueError, match="both"):
        ssl_context(cert, None)
