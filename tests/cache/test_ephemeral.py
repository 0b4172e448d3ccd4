"""The ephemeral tier: verbs, replication, multi-process use and termination."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cache_helpers import object_bytes
from emrfs.cache.ephemeral import EphemeralTier
from emrfs.cache.matching import ephemeral_root, is_ephemeral
from emrfs.cache.store import BlockStore

BS = 64 * 1024
FORK = multiprocessing.get_context("fork")
JOB = "bkt/job/_temporary/0"


def tier(dirs, **kw):
    return EphemeralTier(BlockStore(dirs, free_space_floor=0.0), block_size=BS, **kw)


def test_matching_of_ephemeral_paths():
    pats = ("_temporary", ".spark-staging-*")
    assert is_ephemeral("emrfs://b/out/_temporary/0/task_1/part-0", pats)
    assert is_ephemeral("b/t/.spark-staging-1234/p=1/f", pats)
    assert not is_ephemeral("b/out/part-0", pats)
    assert not is_ephemeral("_temporary/x", pats), "the bucket name is not a key segment"
    assert not is_ephemeral("b/out/_temporary_not", pats)
    assert is_ephemeral("b/tmp/x", pats, prefixes=("b/tmp",))
    assert not is_ephemeral("b/tmpx/y", pats, prefixes=("b/tmp",))
    assert ephemeral_root("b/job/_temporary/0/x", pats) == "b/job/_temporary"
    assert ephemeral_root("b/job/x", pats) is None


def test_write_rename_ls_delete_cycle_stays_local(dirs):
    t = tier(dirs)
    data = object_bytes(3 * BS + 11)
    with t.open_write(f"{JOB}/_temporary/attempt_1/part-0.parquet") as w:
        for i in range(0, len(data), 10_000):  # streamed in pieces, cut into blocks
            w.write(data[i : i + 10_000])
    assert t.info(f"{JOB}/_temporary/attempt_1/part-0.parquet")["size"] == len(data)
    assert t.ls(JOB, detail=False) == [f"{JOB}/_temporary"]
    # FileOutputCommitter: task attempt dir -> task dir (a directory rename).
    t.rename(f"{JOB}/_temporary/attempt_1", f"{JOB}/task_1")
    assert t.ls(f"{JOB}/task_1", detail=False) == [f"{JOB}/task_1/part-0.parquet"]
    assert not t.exists(f"{JOB}/_temporary/attempt_1")
    info = t.info(f"{JOB}/task_1")
    assert info["type"] == "directory" and info["ephemeral"]
    with t.open_for_upload(f"{JOB}/task_1/part-0.parquet") as up:
        assert up.size == len(data)
        assert up.read(5) == data[:5]
        up.seek(BS - 3)
        assert up.read(10) == data[BS - 3 : BS + 7]
        up.seek(0)
        assert up.read() == data
    t.write_bytes(f"{JOB}/task_1/_SUCCESS", b"")
    assert t.read_bytes(f"{JOB}/task_1/_SUCCESS") == b""
    t.rename(f"{JOB}/task_1/_SUCCESS", f"{JOB}/task_1/part-0.parquet")  # file over file
    assert t.read_bytes(f"{JOB}/task_1/part-0.parquet") == b""
    with pytest.raises(OSError, match="Directory not empty"):
        t.delete("bkt/job/_temporary")
    t.delete("bkt/job/_temporary", recursive=True)
    with pytest.raises(FileNotFoundError):
        t.info(f"{JOB}/task_1/part-0.parquet")
    assert sum(t.store.usage(d)[1] for d in range(2)) == 0, "blocks went with the files"


def test_errors_name_the_path(dirs):
    t = tier(dirs)
    t.write_bytes("bkt/x/_temporary/f", b"1")
    with pytest.raises(FileNotFoundError) as err:
        t.open_read("bkt/x/_temporary/missing")
    assert err.value.filename == "bkt/x/_temporary/missing"
    with pytest.raises(IsADirectoryError):
        t.open_write("bkt/x/_temporary")
    with pytest.raises(FileExistsError):
        t.open_write("bkt/x/_temporary/f", overwrite=False)
    with pytest.raises(ValueError):
        t.rename("bkt/x", "bkt/x/_temporary/y")
    with pytest.raises(ValueError):
        EphemeralTier(t.store, block_size=BS, replication=3)


def test_a_writer_that_fails_leaves_nothing(dirs):
    t = tier(dirs)
    with pytest.raises(RuntimeError), t.open_write("bkt/j/_temporary/f") as w:
        w.write(object_bytes(2 * BS))
        raise RuntimeError("task failed")
    assert not t.exists("bkt/j/_temporary/f")
    assert sum(t.store.usage(d)[1] for d in range(2)) == 0


def test_replication_two_survives_a_lost_cache_directory(dirs):
    t = tier(dirs, replication=2)
    files = {f"{JOB}/task_{i}/part-{i}": object_bytes(2 * BS + i, seed=i) for i in range(6)}
    for path, data in files.items():
        t.write_bytes(path, data)
    shutil.rmtree(dirs[0])  # a disk is gone
    for path, data in files.items():
        assert t.read_bytes(path) == data
    assert sorted(t.ls(JOB, detail=False)) == sorted(p.rsplit("/", 1)[0] for p in files)
    t.rename(f"{JOB}/task_0", f"{JOB}/task_9")
    assert t.read_bytes(f"{JOB}/task_9/part-0") == files[f"{JOB}/task_0/part-0"]


def test_replication_one_loses_data_with_its_directory_and_says_so(tmp_path):
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    t = tier(dirs, replication=1)
    for i in range(8):
        t.write_bytes(f"{JOB}/f{i}", object_bytes(BS, seed=i))
    shutil.rmtree(dirs[1])
    lost = 0
    for i in range(8):
        try:
            t.read_bytes(f"{JOB}/f{i}")
        except FileNotFoundError as exc:
            assert "lost" in str(exc)
            lost += 1
    assert lost > 0


def test_encrypted_tier_is_sealed_on_disk_and_unreadable_once_terminated(dirs):
    t = tier(dirs, encrypt=True)
    secret = b"intermediate-secret;" * 5000
    t.write_bytes(f"{JOB}/s", secret)
    raws = [Path(r, f).read_bytes() for d in dirs for r, _, fs in os.walk(d) for f in fs]
    assert not any(b"intermediate-secret" in raw for raw in raws)
    assert t.read_bytes(f"{JOB}/s") == secret
    key_path = t._key.path
    t.terminate()
    assert key_path is None or not os.path.exists(key_path)
    assert not t.exists(f"{JOB}/s")


def test_paths_that_must_be_sealed_are_sealed_with_encrypt_off(dirs):
    def raw_has(marker: bytes) -> bool:
        return any(
            marker in open(os.path.join(r, f), "rb").read()
            for d in dirs
            for r, _, fs in os.walk(d)
            for f in fs
        )

    t = tier(dirs, must_seal=lambda p: p.startswith("bkt/secret/"))
    secret = b"must-be-sealed;" * 9000  # several blocks
    t.write_bytes("bkt/secret/_temporary/0/a", secret)
    t.write_bytes("bkt/plain/_temporary/0/b", b"may-stay-plain;" * 10)
    assert not raw_has(b"must-be-sealed") and raw_has(b"may-stay-plain")
    assert t.read_bytes("bkt/secret/_temporary/0/a") == secret
    # a plaintext file renamed to where it must be sealed is rewritten sealed
    t.write_bytes("bkt/plain/_temporary/0/c", b"moves-in;" * 9000)
    t.mkdir("bkt/secret/_temporary/1")
    t.rename("bkt/plain/_temporary/0", "bkt/secret/_temporary/1/moved")
    assert not raw_has(b"moves-in") and not raw_has(b"may-stay-plain")
    assert t.read_bytes("bkt/secret/_temporary/1/moved/c") == b"moves-in;" * 9000
    assert t.read_bytes("bkt/secret/_temporary/1/moved/b") == b"may-stay-plain;" * 10
    t.terminate()


def _worker(dirs, n, barrier):
    t = tier(dirs, replication=2)
    barrier.wait(30)
    for k in range(5):
        path = f"{JOB}/task_{n}/part-{k}"
        t.write_bytes(path, object_bytes(BS + 17 * k, seed=100 * n + k))
        t.rename(path, f"{JOB}/done_{n}_{k}")
    # Everyone writes one shared name: the last close wins, never a mix.
    t.write_bytes(f"{JOB}/shared", object_bytes(2 * BS, seed=n))


def test_four_processes_share_one_tier(dirs):
    t = tier(dirs, replication=2)  # the parent keeps the tier alive
    barrier = FORK.Barrier(4)
    procs = [FORK.Process(target=_worker, args=(dirs, n, barrier)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for n in range(4):
        for k in range(5):
            expected = object_bytes(BS + 17 * k, seed=100 * n + k)
            assert t.read_bytes(f"{JOB}/done_{n}_{k}") == expected
    assert t.read_bytes(f"{JOB}/shared") in [object_bytes(2 * BS, seed=n) for n in range(4)]
    assert len(t.ls(JOB)) == 4 * 5 + 1 + 4  # files, shared, empty task dirs


SCRIPT = """
import sys
from emrfs.cache.store import BlockStore
from emrfs.cache.ephemeral import EphemeralTier
t = EphemeralTier(BlockStore(sys.argv[1:], free_space_floor=0.0), block_size=65536)
t.write_bytes("bkt/j/_temporary/from-child", b"x" * 100000)
print(t.exists("bkt/j/_temporary/from-child"))
"""


def _run_child(dirs):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *dirs], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_tier_ends_when_the_last_process_using_it_exits(dirs):
    assert _run_child(dirs) == "True"
    # The child was the only user: its exit removed the tier.
    t = tier(dirs)
    assert not t.exists("bkt/j/_temporary/from-child")
    assert sum(t.store.usage(d)[1] for d in range(2)) == 0
    # While this process uses the tier, a child's exit does not remove it.
    assert _run_child(dirs) == "True"
    assert t.exists("bkt/j/_temporary/from-child")
    t.leave()
    assert not EphemeralTier(t.store, block_size=BS).exists("bkt/j/_temporary/from-child")


def test_lifetime_ends_the_tier(dirs):
    now = [1000.0]
    t = tier(dirs, lifetime_seconds=60, clock=lambda: now[0])
    t.write_bytes(f"{JOB}/f", b"abc")
    now[0] += 30
    assert t.read_bytes(f"{JOB}/f") == b"abc"
    now[0] += 31
    assert not t.exists(f"{JOB}/f")
    t.write_bytes(f"{JOB}/g", b"new")  # a fresh tier starts
    assert t.read_bytes(f"{JOB}/g") == b"new"


def test_terminate_wipes_everything(dirs):
    t = tier(dirs, replication=2)
    t.write_bytes(f"{JOB}/f", object_bytes(3 * BS))
    t.terminate()
    assert not t.exists("bkt")
    assert sum(t.store.usage(d)[1] for d in range(2)) == 0


def test_tier_directories_and_manifests_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        dirs = [str(tmp_path / "fresh" / "d0"), str(tmp_path / "fresh" / "d1")]
        t = tier(dirs, replication=2)
        t.mkdir("bkt/made/by/mkdir")
        t.mkdir("bkt/single", create_parents=False)
        t.write_bytes("bkt/out/_temporary/0/part-0", b"data")
        t.rename("bkt/out/_temporary/0/part-0", "bkt/moved/elsewhere/part-0")
    finally:
        os.umask(old)
    walked = list(os.walk(tmp_path / "fresh"))
    created = [os.path.join(top, d) for top, subdirs, _ in walked for d in subdirs]
    assert any(p.endswith(os.path.join("ns", "bkt", "moved", "elsewhere")) for p in created)
    modes = {d: oct(os.stat(d).st_mode & 0o777) for d in created}
    assert set(modes.values()) == {"0o700"}, modes
    files = [os.path.join(top, f) for top, _, names in walked for f in names]
    assert any(f.endswith("part-0") for f in files)  # the manifest
    modes = {f: oct(os.stat(f).st_mode & 0o777) for f in files}
    assert set(modes.values()) == {"0o600"}, modes
    t.leave()
