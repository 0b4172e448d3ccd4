"""A model-based random workload: emrfs against an in-memory HDFS-like namespace.

:func:`generate` draws a seeded sequence of operations (a fixed vocabulary,
:data:`VOCABULARY`) over a small universe of paths (:data:`PATHS`: a few
directories and names, one with a space, one non-ASCII, and a Hadoop
committer's ``_temporary`` tree), so collisions -- writing below a file, over a
directory, renaming into the source's own directory -- happen often.
:class:`Model` says what each operation must return or raise (README
"Semantics", HDFS where the README is silent).  :func:`run` replays a sequence
against a filesystem built for one of :data:`CONFIGS` (plain, SSE, CSE, cache
with the ephemeral tier, the consistent view behind a
:class:`~emrfs.testing.FaultProxy` injecting every fault...), compares every
result and every error class with the model, and after each mutation looks at
the bucket through a side channel (raw boto3 LIST; with the consistent view, a
DynamoDB scan: no live file row for a key S3 lacks).  :func:`shrink` reduces a
failing sequence by delta debugging, replaying subsets on fresh buckets, and
:func:`replay_command` prints how to run the shortest one again.

>>> report = run_workload("plain", seed=7, n_ops=300, endpoint=url)  # doctest: +SKIP
>>> report.ok, report.divergence, report.shrunk                      # doctest: +SKIP

Model decisions where HDFS, POSIX and fsspec differ (each also in docs/testing.md):

* ``mv`` onto an existing directory moves *into* it (HDFS); when the resolved
  target is the source itself (a file moved into its own directory) nothing
  happens (HDFS returns true); a file moved onto an existing file replaces it
  (fsspec / POSIX; HDFS ``rename`` would refuse); a missing destination parent
  is created (S3A's ``rename-creates-dest-dirs``).
* ``rm`` of a non-empty directory without ``recursive`` raises
  ``IsADirectoryError`` (rm(1)); ``rmdir`` of one raises ``OSError(ENOTEMPTY)``.
* ``cat_file`` ranges follow fsspec (negative = from the end; past the end of
  the file reads empty, as an HDFS read at EOF).
* ``find`` of a missing path is ``[]`` (fsspec); ``cp_file`` of a directory
  makes the destination directory (fsspec's ``cp_file`` contract).

The package's modules: :mod:`.ops` (vocabulary, paths, :class:`Op`), :mod:`.model`,
:mod:`.generate`, :mod:`.environment` (:data:`CONFIGS`, :class:`Environment`),
:mod:`.checks` (:func:`run`, the side channel), :mod:`.shrink`, :mod:`.runner`
(:func:`run_workload`, :class:`Report`); every public name imports from here.
"""

from __future__ import annotations

from .checks import Divergence, run, side_channel
from .environment import AES_KEY, CONFIGS, Config, Environment, resolve_configs
from .generate import generate
from .model import OK, Model, Outcome, error_kind
from .ops import (
    MUTATING,
    PATHS,
    READ_PATHS,
    VOCABULARY,
    MiB,
    Op,
    is_ephemeral,
    ops_from_json,
    ops_to_json,
    payload,
)
from .runner import (
    Finding,
    Report,
    format_table,
    replay_command,
    run_workload,
    segment_seed,
)
from .shrink import shrink

__all__ = [
    "AES_KEY",
    "CONFIGS",
    "MUTATING",
    "OK",
    "PATHS",
    "READ_PATHS",
    "VOCABULARY",
    "Config",
    "Divergence",
    "Environment",
    "Finding",
    "MiB",
    "Model",
    "Op",
    "Outcome",
    "Report",
    "error_kind",
    "format_table",
    "generate",
    "is_ephemeral",
    "ops_from_json",
    "ops_to_json",
    "payload",
    "replay_command",
    "resolve_configs",
    "run",
    "run_workload",
    "segment_seed",
    "shrink",
    "side_channel",
]
