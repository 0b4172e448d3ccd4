"""Building the options tree from the defaults, a site file, the environment and
storage options (:func:`load`)."""

from __future__ import annotations

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from .. import hadoop_compat
from ..errors import ConfigurationError
from .options import IGNORED_PROPERTIES, OVERRIDABLE, RESERVED_ENV, SECTIONS, Options, _apply
from .registry import ALIASES, REGISTRY, coerce, lookup


def read_site_file(path: str) -> dict[str, str]:
    """Properties of an emrfs-site file (JSON, Hadoop XML or EMR classification JSON)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read emrfs-site file {path!r}: {exc.strerror or exc}; fix the path "
            "given by site= or EMRFS_SITE",
            path,
        ) from exc
    text = raw.decode("utf-8", "replace").lstrip()
    try:
        if text.startswith("<"):
            root = ET.fromstring(text)
            props = {}
            for prop in root.iter("property"):
                name = (prop.findtext("name") or "").strip()
                if name:
                    props[name] = (prop.findtext("value") or "").strip()
            return props
        data = json.loads(text)
    except (ET.ParseError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"emrfs-site file {path!r} is neither valid JSON nor Hadoop XML: {exc}", path
        ) from exc
    return _classification_properties(data, path)


def _classification_properties(data: Any, path: str) -> dict[str, Any]:
    if isinstance(data, dict) and "Classification" not in data and "Configurations" not in data:
        return dict(data)
    items = data if isinstance(data, list) else data.get("Configurations", [data])
    props: dict[str, Any] = {}
    for item in items:  # the two may not contradict each other: _collect names both
        if isinstance(item, dict) and item.get("Classification") == "emrfs-site":
            props.update(item.get("Properties", {}))
        elif isinstance(item, dict) and item.get("Classification") == "core-site":
            props.update(_s3a_properties(item.get("Properties", {}), path))
    if not props and not any(isinstance(i, dict) and i.get("Classification") for i in items):
        raise ConfigurationError(f"emrfs-site file {path!r} has no emrfs-site classification", path)
    return props


def _s3a_properties(core_site: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The ``fs.s3a.*`` properties of a ``core-site`` classification that emrfs reads.

    EMR 7.10+ clusters configure S3A (encryption included) in core-site, beside
    Hadoop settings that are none of emrfs's business.  S3A tuning emrfs has no
    equivalent for is skipped; an encryption or credential setting it does not
    know is refused, so data is never written with less protection than asked.
    """
    known = {*ALIASES, *(p.name for p in hadoop_compat.PROPERTIES)}
    kept: dict[str, Any] = {}
    for name, value in core_site.items():
        if not name.startswith("fs.s3a."):
            continue
        if name in known:
            kept[name] = value
        elif any(word in name.lower() for word in hadoop_compat.S3A_SECURITY_WORDS):
            raise ConfigurationError(
                f"core-site property {name!r} in {path!r} sets S3A encryption or credentials "
                "in a way emrfs does not read; remove it or use the emrfs option that does the "
                "same (docs/configuration.md lists them)",
                name,
            )
    return kept


def _flatten(options: Mapping[str, Any], source: str) -> list[tuple[str, Any]]:
    """Storage-option spelling -> [(name as given, value)]; section dicts expanded."""
    out: list[tuple[str, Any]] = []
    for name, value in options.items():
        if name in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigurationError(
                    f"option {name!r} in {source} is {value!r}; it takes a dict of {name} "
                    f"options, e.g. {name}={{{next(iter(_section_names(name)))!r}: ...}}",
                    name,
                )
            out.extend((f"{name}.{k}", v) for k, v in value.items())
        elif name == "client_kwargs" and isinstance(value, Mapping):
            out.extend(
                (f"client_kwargs.{k}" if k == "endpoint_url" else k, v) for k, v in value.items()
            )
        else:
            out.append((name, value))
    return out


def _section_names(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def _collect(
    pairs: list[tuple[str, Any]], source: str, names: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list]:
    """Map names to canonical keys; same option twice with different values is a conflict.

    ``names`` maps a name in ``pairs`` to the option it sets where the two differ
    (``EMRFS_*`` variables); EMRFS/S3A properties with Java class names or S3A
    algorithms go through :func:`emrfs.hadoop_compat.translate` first.
    """
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    overrides: list[tuple[str, str, Any]] = []
    kept = [(n, v) for n, v in pairs if n not in IGNORED_PROPERTIES]
    for given, name, raw in hadoop_compat.translate(kept):
        if name.startswith("fs.s3.bucket."):
            bucket, _, prop = name[len("fs.s3.bucket.") :].partition(".fs.s3.")
            if not prop:
                raise ConfigurationError(
                    f"per-bucket key {name!r} in {source} must look like "
                    "fs.s3.bucket.NAME.fs.s3.<property>",
                    name,
                )
            overrides.append((bucket, "fs.s3." + prop, raw))
            continue
        spec = lookup((names or {}).get(name, name), source)
        value = coerce(spec, raw, given, source)
        if spec.key in values and values[spec.key] != value:
            raise ConfigurationError(
                f"conflicting options in {source}: {given_as[spec.key]!r}="
                f"{spec.shown(values[spec.key])} and {given!r}={spec.shown(value)} set the same "
                "thing; keep one",
                given,
            )
        values[spec.key] = value
        given_as[spec.key] = given
    return values, overrides


def load(
    storage_options: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> Options:
    """Build the options tree from defaults, site file, environment, storage options.

    Every value is typed and checked against its option's rule here, and the
    combination against :data:`CONFLICTS`: nothing out of range reaches first use.
    """
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise ConfigurationError(
            f"storage options are {storage_options!r}; give a dict of option names to values",
            "storage_options",
        )
    storage_options = dict(storage_options or {})
    environ = os.environ if environ is None else environ
    layers: list[dict[str, Any]] = []
    overrides: list[tuple[str, str, Any]] = []

    site = storage_options.pop("site", None) or environ.get("EMRFS_SITE")
    if site:
        if not isinstance(site, (str, os.PathLike)):
            raise ConfigurationError(
                f"option 'site' is {site!r}; it takes the path of an emrfs-site file", "site"
            )
        site = os.fspath(site)
        values, ov = _collect(list(read_site_file(site).items()), f"emrfs-site file {site!r}")
        layers.append(values)
        overrides += ov

    layers.append(_environment_values(environ))

    explicit_overrides = _override_table(storage_options.pop("overrides", None))
    values, ov = _collect(_flatten(storage_options, "storage options"), "storage options")
    layers.append(values)
    overrides += ov

    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    options = _apply(Options(), merged)

    grouped = _grouped_overrides(options, overrides, explicit_overrides)
    ordered = sorted(grouped.items(), key=lambda kv: len(kv[0]))
    options = dataclasses.replace(
        options, overrides=tuple((p, tuple(sorted(m.items()))) for p, m in ordered)
    )
    return options


def _environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """Options from ``EMRFS_*`` variables; an unknown one fails naming it."""
    pairs, names = [], {}
    index = {spec.env: spec for spec in REGISTRY.values()}
    for name, raw in environ.items():
        if not name.startswith("EMRFS_") or name in RESERVED_ENV or name.startswith("EMRFS_TEST_"):
            continue
        spec = index.get(name)
        if spec is None:
            raise ConfigurationError(
                f"unknown environment variable {name!r}: EMRFS_* variables name options "
                "(e.g. EMRFS_ENDPOINT_URL, EMRFS_CONSISTENCY_ENABLED); unset it or fix the name",
                name,
            )
        pairs.append((name, raw))
        names[name] = spec.key
    return _collect(pairs, "the environment", names)[0]


def _grouped_overrides(
    options: Options,
    overrides: list[tuple[str, str, Any]],
    explicit: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """``{prefix: {option key: value}}`` from per-bucket properties and ``overrides=``,
    each checked on its own and in combination with ``options`` now, not on first use."""
    grouped: dict[str, dict[str, Any]] = {}
    for prefix, name, raw in overrides:
        spec = lookup(name, f"override for {prefix!r}")
        grouped.setdefault(prefix, {})[spec.key] = coerce(
            spec, raw, name, f"override for {prefix!r}"
        )
    for prefix, mapping in explicit.items():
        values, _ = _collect(_flatten(mapping, f"overrides[{prefix!r}]"), f"overrides[{prefix!r}]")
        grouped.setdefault(prefix.strip("/"), {}).update(values)
    for prefix, mapping in grouped.items():
        for key in mapping:
            if key.split(".")[0] not in OVERRIDABLE:
                raise ConfigurationError(
                    f"option {key!r} cannot be overridden per bucket or prefix ({prefix!r}); "
                    f"only {', '.join(OVERRIDABLE)} options can",
                    key,
                )
        _apply(options, mapping)
    return grouped


def _override_table(value: Any) -> Mapping[str, Mapping[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(prefix, str) and prefix.strip("/") and isinstance(mapping, Mapping)
        for prefix, mapping in value.items()
    ):
        raise ConfigurationError(
            f"option 'overrides' in storage options is {value!r}; it takes a dict of "
            "'bucket' or 'bucket/prefix' to a dict of options, e.g. "
            "overrides={'logs': {'consistent': True}}",
            "overrides",
        )
    return value
