"""Every option by canonical key and by alias, and the parsing and checking of values."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from ..errors import ConfigurationError
from .options import SECTIONS
from .rules import GiB, MiB, Rule


@dataclass(frozen=True)
class OptionSpec:
    section: str
    name: str
    type: Any
    default: Any
    aliases: tuple[str, ...]
    doc: str
    rule: Rule | None = None
    convert: Callable[[Any], Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        middle = self.name if self.section == "s3" else f"{self.section}_{self.name}"
        return "EMRFS_" + middle.upper()

    def shown(self, value: Any) -> str:
        """``value`` as messages show it: never a credential or key."""
        return self.rule.shown(value) if self.rule is not None else repr(value)

    @property
    def optional(self) -> bool:
        return type(None) in getattr(self.type, "__args__", ())

    @property
    def base(self) -> type:
        """bool, int, float, str or tuple (of str)."""
        kind = self.type
        if getattr(kind, "__origin__", None) is not tuple:
            kind = next((t for t in getattr(kind, "__args__", (kind,)) if t is not type(None)), str)
        return getattr(kind, "__origin__", kind)

    @property
    def allowed(self) -> str:
        """The values this option takes, in words (errors and docs/configuration.md)."""
        what = {
            bool: "true or false",
            int: "an integer",
            float: "a number",
            str: "a string",
            tuple: "a comma-separated list or a list of strings",
        }[self.base]
        if self.rule is not None and self.base in (int, float):
            what = f"{what} {self.rule.allowed}"
        elif self.rule is not None:
            what = (
                self.rule.allowed if self.base is not tuple else f"{what}, each {self.rule.allowed}"
            )
        return what + (", or unset" if self.optional else "")


def _build_registry() -> tuple[dict[str, OptionSpec], dict[str, OptionSpec]]:
    by_key: dict[str, OptionSpec] = {}
    by_alias: dict[str, OptionSpec] = {}
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            spec = OptionSpec(
                section,
                f.name,
                hints[f.name],
                f.default,
                tuple(f.metadata.get("aliases", ())),
                f.metadata.get("doc", ""),
                f.metadata.get("rule"),
                f.metadata.get("convert"),
            )
            by_key[spec.key] = spec
            names = [spec.key, *spec.aliases]
            if section == "s3":
                names.append(f.name)
            for name in names:
                if name in by_alias:
                    raise AssertionError(f"alias {name} used twice")
                by_alias[name] = spec
    return by_key, by_alias


REGISTRY, ALIASES = _build_registry()


def lookup(name: str, source: str = "storage options") -> OptionSpec:
    spec = ALIASES.get(name)
    if spec is None:
        close = sorted(k for k in ALIASES if name.split(".")[-1].lower() in k.lower())[:5]
        hint = f"; did you mean one of {close}?" if close else ""
        raise ConfigurationError(
            f"unknown emrfs option {name!r} in {source}{hint} "
            "(see docs/configuration.md for every option and its aliases)",
            name,
        )
    return spec


def coerce(spec: OptionSpec, value: Any, name: str, source: str) -> Any:
    """Parse ``value`` (often a string from XML/env) into the option's type and check it
    against the option's rule; a :class:`ConfigurationError` names the option, the value
    and what the option allows."""
    given = value
    if spec.convert is not None:
        value = spec.convert(value)
    if spec.optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None  # an empty Hadoop <value/> leaves an optional option unset
    try:
        value = _parse(spec.base, value)
        ok = spec.rule is None or (
            all(spec.rule.test(v) for v in value) if spec.base is tuple else spec.rule.test(value)
        )
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        spelled = repr(name) if name == spec.key else f"{name!r} ({spec.key})"
        raise ConfigurationError(
            f"option {spelled} in {source} is {spec.shown(given)}; it takes {spec.allowed}", name
        )
    return value


def _parse(base: type, value: Any) -> Any:
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)):
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
        raise ValueError(value)
    if base is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)  # True is not 1 request; 1.5 is not a count
        if not isinstance(value, (int, float, str)):
            raise TypeError(value)
        return _size(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(value)
        return float(value)
    if base is tuple:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise TypeError(value)
        return tuple(value)
    if not isinstance(value, str):
        raise TypeError(value)  # a number where a name or URL belongs is a mistake
    return value


def _size(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        units = {"k": 1024, "m": MiB, "g": GiB, "t": 1024 * GiB}
        for suffix in ("ib", "b"):
            if text.endswith(suffix) and text[: -len(suffix)][-1:] in units:
                text = text[: -len(suffix)]
        if text and text[-1] in units:
            number = float(text[:-1]) * units[text[-1]]
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return int(text)
    return int(value)
