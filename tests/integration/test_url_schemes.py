"""s3://, s3a:// and s3n:// served by emrfs when asked (gateway/EMR issue, item 6).

Each case runs in a subprocess, so fsspec's registry changes stay there. A
subprocess sees the entry points of this checkout's pyproject.toml through a
dist-info written for it (the venv's install may predate them). emrfs serving a
URL is checked through a side channel: the stored object is CSE ciphertext (s3fs
would refuse the ``cse`` option, and writes plaintext).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AES_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="module")
def entry_points_dir(tmp_path_factory) -> Path:
    """A dist-info carrying pyproject.toml's fsspec.specs entry points (shadows the venv's)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["entry-points"]["fsspec.specs"]
    root = tmp_path_factory.mktemp("dist")
    info = root / f"emrfs-{project['version']}.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: emrfs\nVersion: {project['version']}\n"
    )
    info.joinpath("entry_points.txt").write_text(
        "[fsspec.specs]\n" + "".join(f"{k} = {v}\n" for k, v in specs.items())
    )
    return root


def run(code: str, entry_points_dir: Path, env: dict[str, str] | None = None) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "EMRFS_REGISTER_PROTOCOLS"}
    environ.update(env or {})
    environ["PYTHONPATH"] = os.pathsep.join([str(entry_points_dir), str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(entry_points_dir),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def storage_options(endpoint: str) -> dict:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "region": "us-east-1",
        "skip_instance_cache": True,
        "cse": {
            "enabled": True,
            "materials_provider": "emrfs.crypto.keys:AesKeyProvider",
            "aes_key": AES_KEY,
        },
    }


def assert_ciphertext(s3, bucket: str, key: str) -> None:
    obj = s3.get_object(Bucket=bucket, Key=key)
    assert "x-amz-3" in obj["Metadata"], key  # an emrfs CSE envelope, not s3fs's plaintext
    body = obj["Body"].read()
    assert not body.startswith(b"PAR1") and b"xxxxxxxxxx" not in body, key


PANDAS_ROUND_TRIP = """
    import json, sys
    import pandas as pd
    opts = {opts}
    bucket = {bucket!r}
    df = pd.DataFrame({{"n": list(range(100)), "s": ["x" * 10] * 100}})
    out = {{}}
    for scheme in {schemes!r}:
        url = f"{{scheme}}://{{bucket}}/{{scheme}}/part-0.parquet"
        df.to_parquet(url, storage_options=opts)
        back = pd.read_parquet(url, storage_options=opts)
        out[scheme] = bool(back.equals(df))
    {extra}
    out["emrfs_imported"] = "emrfs" in sys.modules
    print(json.dumps(out))
"""


def pandas_code(endpoint, bucket, schemes, extra="") -> str:
    return textwrap.dedent(PANDAS_ROUND_TRIP).format(
        opts=repr(storage_options(endpoint)),
        bucket=bucket,
        schemes=tuple(schemes),
        extra=textwrap.dedent(extra).replace("\n", "\n    "),
    )


def test_register_serves_s3_s3a_s3n_to_pandas_and_pyarrow(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, entry_points_dir
):
    extra = """
    import fsspec, pyarrow.dataset as ds
    from pyarrow.fs import PyFileSystem, FSSpecHandler
    fs, path = fsspec.core.url_to_fs(f"s3a://{bucket}/s3", **opts)
    out["url_to_fs"] = type(fs).__name__
    table = ds.dataset(path, filesystem=PyFileSystem(FSSpecHandler(fs))).to_table()
    out["pyarrow_rows"] = table.num_rows
    # pandas' text readers rewrite s3a:// and s3n:// to s3:// (so s3 must be emrfs's too)
    df.to_csv(f"s3a://{bucket}/csv/a.csv", index=False, storage_options=opts)
    out["csv"] = bool(pd.read_csv(f"s3n://{bucket}/csv/a.csv", storage_options=opts).equals(df))
    """
    code = "import emrfs\nassert emrfs.register() == ('s3', 's3a', 's3n')\n" + pandas_code(
        emrfs_endpoint, emrfs_bucket, ("s3", "s3a", "s3n"), extra
    )
    out = run(code, entry_points_dir)
    assert out["s3"] and out["s3a"] and out["s3n"], out
    assert out["url_to_fs"] == "EmrFileSystem" and out["pyarrow_rows"] == 100, out
    assert out["csv"], out
    for scheme in ("s3", "s3a", "s3n", "csv"):
        key = "csv/a.csv" if scheme == "csv" else f"{scheme}/part-0.parquet"
        assert_ciphertext(emrfs_s3, emrfs_bucket, key)


def test_environment_variable_works_when_only_pandas_is_imported(
    emrfs_endpoint, emrfs_s3, emrfs_bucket, entry_points_dir
):
    out = run(
        pandas_code(emrfs_endpoint, emrfs_bucket, ("s3", "s3a")),
        entry_points_dir,
        {"EMRFS_REGISTER_PROTOCOLS": "s3,s3a"},
    )
    assert out["s3"] and out["s3a"] and out["emrfs_imported"], out
    for scheme in ("s3", "s3a"):
        assert_ciphertext(emrfs_s3, emrfs_bucket, f"{scheme}/part-0.parquet")


def test_without_asking_s3_and_s3a_stay_s3fs_and_s3n_is_emrfs(entry_points_dir):
    out = run(
        """
        import json, fsspec
        print(json.dumps({p: fsspec.get_filesystem_class(p).__module__
                          for p in ("s3", "s3a", "s3n", "emrfs")}))
    """,
        entry_points_dir,
    )
    assert out == {
        "s3": "s3fs.core",
        "s3a": "s3fs.core",
        "s3n": "emrfs.filesystem",
        "emrfs": "emrfs.filesystem",
    }


def test_import_emrfs_honours_the_variable_and_refuses_unknown_schemes(entry_points_dir):
    out = run(
        """
        import json, emrfs, fsspec
        print(json.dumps({p: fsspec.get_filesystem_class(p).__module__ for p in ("s3", "s3a")}))
    """,
        entry_points_dir,
        {"EMRFS_REGISTER_PROTOCOLS": "s3"},
    )
    assert out == {"s3": "emrfs.filesystem", "s3a": "s3fs.core"}
    environ = {
        **os.environ,
        "EMRFS_REGISTER_PROTOCOLS": "s3,gs",
        "PYTHONPATH": os.pathsep.join([str(entry_points_dir), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import emrfs"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        done.returncode != 0 and "EMRFS_REGISTER_PROTOCOLS" in done.stderr and "'gs'" in done.stderr
    )
