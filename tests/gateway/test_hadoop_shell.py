"""Hadoop's own ``FsShell`` (from the jars pyspark ships) against the gateway.

One JVM runs every command (``java/FsShellBatch.java``, launched as a source
file); skipped when pyspark or a JDK is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# needs pyspark's jars and a JVM: the same CI group as the Spark tests
pytestmark = [pytest.mark.spark, pytest.mark.integration]

HERE = Path(__file__).parent


def pyspark_jars() -> Path | None:
    try:
        import pyspark
    except ImportError:
        return None
    jars = Path(pyspark.__file__).parent / "jars"
    return jars if any(jars.glob("hadoop-client-api-*.jar")) else None


def run_shell(
    url: str,
    commands: list[list[str]],
    workdir: Path,
    user: str = "carol",
    conf_extra: dict[str, str] | None = None,
):
    """Run FsShell command lines against ``url``; returns [(exit code, output)] per command."""
    jars, java = pyspark_jars(), shutil.which("java")
    if jars is None or java is None:
        pytest.skip("needs pyspark (its Hadoop jars) and a JDK")
    conf = workdir / "hadoop-conf"
    conf.mkdir(exist_ok=True)
    props = {"fs.defaultFS": url, **(conf_extra or {})}
    (conf / "core-site.xml").write_text(
        "<configuration>"
        + "".join(
            f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items()
        )
        + "</configuration>"
    )
    argv = [
        java,
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-cp",
        f"{conf}{os.pathsep}{jars}/*",
        str(HERE / "java" / "FsShellBatch.java"),
    ]
    for i, command in enumerate(commands):
        argv += (["--"] if i else []) + command
    env = dict(os.environ, HADOOP_USER_NAME=user)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=workdir)
    results, lines = [], []
    for line in proc.stdout.splitlines():
        if line.startswith("@@EXIT "):
            results.append((int(line.split()[1]), "\n".join(lines)))
            lines = []
        else:
            lines.append(line)
    assert len(results) == len(commands), proc.stdout + proc.stderr
    return results, proc.stderr


def test_fsshell_ls_put_cat_mv_append_rm(served_one, gateway, tmp_path):
    served = served_one
    local = tmp_path / "local.txt"
    local.write_text("hello from hadoop\n")
    more = tmp_path / "more.txt"
    more.write_text("appended\n")
    base = f"/{served.bucket}/shell"
    url = gateway.url.replace("http://", "webhdfs://")
    results, stderr = run_shell(
        url,
        [
            ["-mkdir", "-p", f"{base}/d"],
            ["-put", str(local), f"{base}/d/a.txt"],
            ["-ls", f"{base}/d"],
            ["-cat", f"{base}/d/a.txt"],
            ["-mv", f"{base}/d", f"{base}/e"],
            ["-appendToFile", str(more), f"{base}/e/a.txt"],
            ["-cat", f"{base}/e/a.txt"],
            ["-ls", "/"],
            ["-rm", "-r", f"{base}/e"],
            ["-test", "-e", f"{base}/e"],
            ["-put", str(local), f"{base}/d/a.txt"],  # the parent moved away: HDFS refuses
            ["-mkdir", "-p", f"{base}/d"],
            ["-put", str(local), f"{base}/d/a.txt"],
            ["-checksum", f"{base}/d/a.txt"],
        ],
        tmp_path,
    )
    codes = [code for code, _ in results]
    assert codes == [0] * 9 + [1, 1, 0, 0, 0], stderr
    assert "carol" in results[2][1] and f"{base}/d/a.txt" in results[2][1]
    assert results[3][1] == "hello from hadoop"
    assert results[6][1] == "hello from hadoop\nappended"
    assert f"/{served.bucket}" in results[7][1]
    assert served.read_raw(f"{base}/d/a.txt".lstrip("/")) == b"hello from hadoop\n"
    assert "MD5-of-0MD5-of-512CRC32" in results[13][1]  # Hadoop parsed our FileChecksum


def test_fsshell_sends_the_token_through_oauth2(tmp_path):
    import fsspec
    from fsspec.implementations.dirfs import DirFileSystem

    from emrfs.gateway import serve_in_thread

    served = tmp_path / "served"
    (served / "bucket").mkdir(parents=True)
    local = tmp_path / "in.txt"
    local.write_text("guarded\n")
    fs = DirFileSystem(str(served), fs=fsspec.filesystem("file"))
    with serve_in_thread(fs, token="sesame") as gateway:

        def oauth(secret: str) -> dict[str, str]:
            return {
                "dfs.webhdfs.oauth2.enabled": "true",
                "dfs.webhdfs.oauth2.access.token.provider": "org.apache.hadoop.hdfs.web.oauth2."
                "ConfCredentialBasedAccessTokenProvider",
                "dfs.webhdfs.oauth2.refresh.url": f"{gateway.url}/oauth2/token",
                "dfs.webhdfs.oauth2.client.id": "hadoop",
                "dfs.webhdfs.oauth2.credential": secret,
            }

        url = gateway.url.replace("http://", "webhdfs://")
        good, _ = run_shell(
            url,
            [["-put", str(local), "/bucket/in.txt"], ["-cat", "/bucket/in.txt"]],
            tmp_path,
            conf_extra=oauth("sesame"),
        )
        (tmp_path / "hadoop-conf" / "core-site.xml").unlink()
        bad, _stderr = run_shell(url, [["-ls", "/bucket"]], tmp_path, conf_extra=oauth("wrong"))
    assert [code for code, _ in good] == [0, 0] and good[1][1] == "guarded"
    assert (served / "bucket" / "in.txt").read_text() == "guarded\n"
    assert bad[0][0] != 0


def test_fsshell_non_ascii_and_reserved_names(served_one, gateway, tmp_path, monkeypatch):
    """Hadoop's client sends non-ASCII path characters as raw UTF-8 in the request line."""
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # the JVM decodes its arguments by the locale
    served = served_one
    local = tmp_path / "local.txt"
    local.write_text("grüezi\n", encoding="utf-8")
    base = f"/{served.bucket}/städte"
    url = gateway.url.replace("http://", "webhdfs://")
    results, stderr = run_shell(
        url,
        [
            ["-mkdir", "-p", f"{base}/zürich"],
            ["-put", str(local), f"{base}/zürich/a b+c%d=e&f.txt"],
            ["-ls", f"{base}/zürich"],
            ["-cat", f"{base}/zürich/a b+c%d=e&f.txt"],
            ["-mv", f"{base}/zürich", f"{base}/東京"],
            ["-ls", base],
        ],
        tmp_path,
    )
    assert [code for code, _ in results] == [0] * 6, stderr
    assert f"{base}/zürich/a b+c%d=e&f.txt" in results[2][1]
    assert results[3][1] == "grüezi"
    assert f"{base}/東京" in results[5][1]
    stored = f"{base}/東京/a b+c%d=e&f.txt".lstrip("/")  # the side channel: the decoded key
    assert served.read_raw(stored) == "grüezi\n".encode()


def _documented_fsshell() -> tuple[str, list[str]]:
    """docs/gateway.md's FsShell section: its core-site.xml and its java command lines."""
    import re

    text = (HERE.parents[1] / "docs" / "gateway.md").read_text(encoding="utf-8")
    section = text.split("## Hadoop's FsShell", 1)[1].split("\n## ", 1)[0]
    xml = re.search(r"```xml\n(.*?)```", section, re.S).group(1)
    console = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    commands = [line[2:] for line in console.splitlines() if "FsShell" in line]
    return xml, commands


def test_the_documented_fsshell_setup_works(gateway, served_one, tmp_path):
    """The smallest core-site.xml and the exact ``java -cp`` lines of docs/gateway.md."""
    jars, java = pyspark_jars(), shutil.which("java")
    if jars is None or java is None:
        pytest.skip("needs pyspark (its Hadoop jars) and a JDK")
    xml, commands = _documented_fsshell()
    assert len(commands) == 2 and "<configuration>" in xml
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "core-site.xml").write_text(
        xml.replace("127.0.0.1:9870", f"127.0.0.1:{gateway.port}")
    )
    env = dict(os.environ, JARS=str(jars))
    outputs = []
    for command in commands:
        command = command.replace("/my-bucket", f"/{served_one.bucket}")
        proc = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert f"/{served_one.bucket}/zürich" in outputs[1]
    # without the file, Hadoop 3.5 does not start: what the documentation says
    (tmp_path / "conf" / "core-site.xml").unlink()
    proc = subprocess.run(
        ["bash", "-c", commands[1].replace("/my-bucket", "/")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "core-site.xml not found" in proc.stderr
