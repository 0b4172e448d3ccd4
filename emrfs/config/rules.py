"""What each option allows: :class:`Rule` and the field helper :func:`opt`.

A rule is declared with its option (``opt(default, *aliases, doc=..., rule=...)``
in :mod:`emrfs.config.sections`) and checked at construction by
:func:`emrfs.config.registry.coerce`; its ``allowed`` text is also what the
error message and ``docs/configuration.md`` say.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Rule:
    """The values one option allows; ``allowed`` is how errors and docs describe them."""

    allowed: str
    test: Callable[[Any], bool]
    #: a credential or key: messages never show the value
    secret: bool = False

    def shown(self, value: Any) -> str:
        """``value`` as error messages show it."""
        if self.secret and value is not None:
            return f"<secret, {len(str(value))} characters>"
        return repr(value)


def quantity(number: float, unit: str) -> str:
    if unit == " bytes" and number >= 1024:
        for name, size in (("TiB", 1024 * GiB), ("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
            if number % size == 0:
                return f"{number // size} {name}"
    return "1 byte" if unit == " bytes" and number == 1 else f"{number:g}{unit}"


def between(low: float, high: float, unit: str = "") -> Rule:
    """A number from ``low`` to ``high`` inclusive (finite: NaN and infinity are refused)."""
    text = (
        f"from {quantity(low, unit)} to {quantity(high, unit)}"
        if unit == " bytes"
        else f"from {low:g} to {high:g}{unit}"
    )
    return Rule(text, lambda v: math.isfinite(v) and low <= v <= high)


def one_of(*choices: str) -> Rule:
    return Rule("one of " + ", ".join(repr(c) for c in choices), lambda v: v in choices)


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_base64_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value.strip(), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _is_json_object(value: str) -> bool:
    try:
        data = json.loads(value)
    except ValueError:
        return False
    return isinstance(data, dict) and all(
        isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
        for k, v in data.items()
    )


TEXT = Rule("a non-empty string", lambda v: bool(v.strip()))
URL = Rule("an http:// or https:// URL with a host", _is_url)
REGION = Rule(
    "an AWS region name such as 'us-east-1' (a-z, 0-9, '-')",
    lambda v: re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", v) is not None,
)
DYNAMODB_TABLE = Rule(
    "a DynamoDB table name: 3 to 255 of a-z A-Z 0-9 _ - .",
    lambda v: re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", v) is not None,
)
BASE64_256_BIT_KEY = Rule(
    "base64 of a 256-bit (32-byte) key, e.g. from `openssl rand -base64 32`",
    _is_base64_key,
    secret=True,
)
SECRET = Rule("a non-empty string", lambda v: bool(v.strip()), secret=True)
JSON_OBJECT = Rule("a JSON object of ASCII strings", _is_json_object)
READABLE_FILE = Rule(
    "the path of a readable file", lambda v: os.path.isfile(v) and os.access(v, os.R_OK)
)
PYTHON_CLASS = Rule(
    "'module:Class' of a Python KeyProvider or EncryptionMaterialsProvider",
    lambda v: re.fullmatch(r"[A-Za-z_][\w.]*[:.][A-Za-z_]\w*", v) is not None,
)


def _is_retry_policy(value: str) -> bool:
    from ..consistency.policy import retry_policy_names  # policies can be registered at run time

    return value.lower() in retry_policy_names()


RETRY_POLICY = Rule(
    "'exponential', 'fixed', 'none' or a name registered with "
    "emrfs.consistency.policy.register_retry_policy",
    _is_retry_policy,
)


def opt(
    default: Any,
    *aliases: str,
    doc: str = "",
    rule: Rule | None = None,
    convert: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field carrying its aliases, one line of documentation, the values it
    allows (``rule``; its type is the annotation) and ``convert``, which maps a foreign
    spelling of a value (an EMR Java class name) to the emrfs one before the checks."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples / frozen values for defaults")
    return field(
        default=default, metadata={"aliases": aliases, "doc": doc, "rule": rule, "convert": convert}
    )
