"""One frozen options tree, built from four sources in rising priority:

1. defaults (the dataclass defaults below),
2. an ``emrfs-site`` file: JSON (``{"fs.s3.consistent": "true"}``), Hadoop XML
   (``<configuration><property><name>…``) or EMR's configuration-classification
   JSON (``[{"Classification": "emrfs-site", "Properties": {...}}]``); named by
   the ``site=`` option or ``EMRFS_SITE``,
3. ``EMRFS_*`` environment variables (``EMRFS_ENDPOINT_URL``,
   ``EMRFS_CONSISTENCY_RETRY_COUNT``: ``EMRFS_`` + section + name, upper case;
   the ``s3`` section has no section part),
4. storage options (keyword arguments of the filesystem, ``emrfs://`` URLs).

Every option has a canonical name ``section.name`` (``consistency.retry_count``)
and may have aliases: EMRFS's property name (``fs.s3.consistent.retryCount``),
a short Python name (``consistent``) and the s3fs spelling (``key``,
``secret``).  In storage options a whole section may also be given as a dict
(``consistency={"retry_count": 3}``).  Per-bucket and per-prefix overrides use
``fs.s3.bucket.NAME.<property>`` (as S3A's ``fs.s3a.bucket.NAME.*``) or
``overrides={"bucket/prefix": {...}}``; see :meth:`Options.for_path`.

Each option declares its type (the annotation) and the values it allows
(``rule=``: a range, choices or a format) beside its default, in the dataclasses
of :mod:`emrfs.config.sections`: that is the one table.  An unknown key, a value
of the wrong type or out of range, two spellings of one option in one source
with different values, or a combination in :data:`CONFLICTS` fail at
construction with a :class:`~emrfs.errors.ConfigurationError` naming the
key(s), the value (never a key or credential) and what is allowed.  EMR's and
S3A's Java class names and algorithms are translated by :mod:`emrfs.hadoop_compat`;
``docs/configuration.md`` is generated from both (:mod:`emrfs.config_reference`).

Modules: :mod:`~emrfs.config.rules` (what an option allows), :mod:`~emrfs.config.sections`
(the table), :mod:`~emrfs.config.options` (the tree and its per-path overrides),
:mod:`~emrfs.config.conflicts` (the conflicts table), :mod:`~emrfs.config.registry` (lookup,
parsing, checks),
:mod:`~emrfs.config.loading` (sources, :func:`load`).
"""

from __future__ import annotations

from .loading import load, read_site_file
from .options import (
    CONFLICTS,
    IGNORED_PROPERTIES,
    OVERRIDABLE,
    RESERVED_ENV,
    SECTIONS,
    CacheOptions,
    Conflict,
    ConsistencyOptions,
    CSEOptions,
    EphemeralOptions,
    Options,
    S3Options,
    SSEOptions,
    validate,
)
from .registry import ALIASES, REGISTRY, OptionSpec, coerce, lookup
from .rules import (
    BASE64_256_BIT_KEY,
    DYNAMODB_TABLE,
    JSON_OBJECT,
    PYTHON_CLASS,
    READABLE_FILE,
    REGION,
    RETRY_POLICY,
    SECRET,
    TEXT,
    URL,
    GiB,
    MiB,
    Rule,
    between,
    one_of,
    opt,
)

__all__ = [
    "ALIASES",
    "BASE64_256_BIT_KEY",
    "CONFLICTS",
    "DYNAMODB_TABLE",
    "GiB",
    "IGNORED_PROPERTIES",
    "JSON_OBJECT",
    "MiB",
    "OVERRIDABLE",
    "PYTHON_CLASS",
    "READABLE_FILE",
    "REGION",
    "REGISTRY",
    "RETRY_POLICY",
    "SECRET",
    "RESERVED_ENV",
    "SECTIONS",
    "TEXT",
    "URL",
    "CSEOptions",
    "CacheOptions",
    "Conflict",
    "ConsistencyOptions",
    "EphemeralOptions",
    "OptionSpec",
    "Options",
    "Rule",
    "S3Options",
    "SSEOptions",
    "between",
    "coerce",
    "load",
    "lookup",
    "one_of",
    "opt",
    "read_site_file",
    "validate",
]
