"""EMRFS and S3A settings whose values name Java classes or S3A algorithms, as emrfs options.

An EMR cluster writes Java class names into its ``emrfs-site`` configuration
(every CSE-KMS cluster carries ``fs.s3.cse.encryptionMaterialsProvider =
com.amazon.ws.emr.hadoop.fs.cse.KMSEncryptionMaterialsProvider``), and S3A
spells encryption as ``fs.s3a.encryption.algorithm`` + ``fs.s3a.encryption.key``
where the meaning of the key depends on the algorithm.  This module turns the
ones emrfs has an equivalent for into emrfs options and refuses the rest,
naming the class or value and what to use instead.  :data:`PROPERTIES` is the
table; ``docs/configuration.md`` is generated from it (``emrfs.config_reference``).

Only :mod:`emrfs.errors` is imported here: :mod:`emrfs.config` imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError

EMR_KMS_PROVIDER = "com.amazon.ws.emr.hadoop.fs.cse.KMSEncryptionMaterialsProvider"

#: Credential providers that botocore's default chain covers (environment, shared
#: config and credentials files, web identity, container and instance metadata).
DEFAULT_CHAIN_PROVIDERS = frozenset(
    {
        "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
        "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
        "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
        "org.apache.hadoop.fs.s3a.SharedInstanceProfileCredentialsProvider",
        "com.amazonaws.auth.InstanceProfileCredentialsProvider",
        "software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider",
        "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
        "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
        "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper",
        "com.amazonaws.auth.ContainerCredentialsProvider",
        "software.amazon.awssdk.auth.credentials.ContainerCredentialsProvider",
        "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
        "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider",
    }
)
#: Providers that read the access key, secret and token from their own properties,
#: which emrfs reads as s3.access_key_id / secret_access_key / session_token.
KEY_PROVIDERS = frozenset(
    {
        "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    }
)
ANONYMOUS_PROVIDERS = frozenset(
    {
        "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider",
        "software.amazon.awssdk.auth.credentials.AnonymousCredentialsProvider",
    }
)
#: Words in an S3A property name that mean encryption or credentials: such a property
#: emrfs does not read is refused rather than skipped (emrfs.config.loading).
S3A_SECURITY_WORDS = (
    "encryption",
    "cse",
    "sse",
    "credential",
    "access.key",
    "secret",
    "session.token",
    "assumed.role",
    "kms",
)
_JAVA_PACKAGES = ("com.", "org.", "software.amazon.", "net.", "java.", "javax.")

#: S3A's encryption algorithms -> (emrfs options, the option fs.s3a.encryption.key sets)
S3A_ALGORITHMS: dict[str, tuple[dict[str, Any], str | None]] = {
    "SSE-S3": ({"sse.enabled": True, "sse.algorithm": "AES256"}, None),
    "SSE-KMS": ({"sse.enabled": True, "sse.algorithm": "aws:kms"}, "sse.kms_key_id"),
    "DSSE-KMS": ({"sse.enabled": True, "sse.algorithm": "aws:kms:dsse"}, "sse.kms_key_id"),
    "SSE-C": ({"sse.enabled": True, "sse.algorithm": "SSE-C"}, "sse.customer_key"),
    "CSE-KMS": ({"cse.enabled": True}, "cse.kms_key_id"),
}


def is_java_class(name: str) -> bool:
    return ":" not in name and name.startswith(_JAVA_PACKAGES)


def materials_provider(value: Any) -> Any:
    """``cse.materials_provider`` as given -> emrfs's: EMR's KMS provider means CSE-KMS."""
    if not isinstance(value, str):
        return value
    name = value.strip()
    if name in ("", EMR_KMS_PROVIDER):
        return None  # CSE-KMS with fs.s3.cse.kms.keyId, emrfs's default provider
    if is_java_class(name):
        raise ConfigurationError(
            f"fs.s3.cse.encryptionMaterialsProvider (cse.materials_provider) is the Java class "
            f"{name!r}, which emrfs cannot run; for CSE-KMS use {EMR_KMS_PROVIDER} or leave it "
            "unset and set fs.s3.cse.kms.keyId; for your own keys give 'module:Class' of a Python "
            "KeyProvider or EncryptionMaterialsProvider (docs/encryption.md)",
            "cse.materials_provider",
        )
    return name


def credential_providers(value: Any, prop: str) -> dict[str, Any]:
    """A credential provider list (S3A's is comma-separated) -> emrfs options.

    The default chain and the key providers need no option (botocore's chain is
    the default, and the keys come from their own properties); anonymous access
    is ``s3.anon``.  Anything else is Java code emrfs cannot run.
    """
    names = [n.strip() for n in str(value).replace("\n", ",").split(",") if n.strip()]
    for name in names:
        if name in ANONYMOUS_PROVIDERS:
            if len(names) > 1:
                raise ConfigurationError(
                    f"{prop} lists {name!r} with other providers; emrfs is either anonymous "
                    "(s3.anon) or signs with credentials: keep one",
                    prop,
                )
            return {"s3.anon": True}
        if name not in DEFAULT_CHAIN_PROVIDERS and name not in KEY_PROVIDERS:
            raise ConfigurationError(
                f"{prop} names the credential provider {name!r}, which emrfs cannot run; remove "
                "it to use the default chain (environment, ~/.aws files, web identity, instance "
                "role), give key/secret/token (fs.s3a.access.key, fs.s3a.secret.key, "
                "fs.s3a.session.token), or profile= naming an AWS profile (which can assume a "
                "role with role_arn and source_profile)",
                prop,
            )
    return {}


def s3a_encryption(algorithm: Any, key: Any, algorithm_prop: str, key_prop: str) -> dict[str, Any]:
    """S3A's algorithm and key -> emrfs options; the key's meaning depends on the algorithm."""
    name = str(algorithm or "").strip().upper()
    if name in ("", "NONE"):
        if key:
            raise ConfigurationError(
                f"{key_prop} is set but {algorithm_prop} is not; set the algorithm "
                f"({', '.join(S3A_ALGORITHMS)})",
                key_prop,
            )
        return {}
    if name == "AES256":
        name = "SSE-S3"  # the value S3A's older releases used
    if name not in S3A_ALGORITHMS:
        raise ConfigurationError(
            f"{algorithm_prop} is {algorithm!r}; emrfs reads {', '.join(S3A_ALGORITHMS)} "
            "(CSE-CUSTOM runs a Java class: use cse.materials_provider with a Python provider)",
            algorithm_prop,
        )
    options, key_option = S3A_ALGORITHMS[name]
    options = dict(options)
    if key:
        if key_option is None:
            raise ConfigurationError(
                f"{key_prop} is set but {algorithm_prop}={algorithm!r} takes no key; remove it",
                key_prop,
            )
        options[key_option] = key
    return options


@dataclass(frozen=True)
class ForeignProperty:
    """A property read through a translation rather than as an option's alias."""

    name: str
    maps_to: str  # for the docs: what it becomes
    refuses: str  # for the docs: what fails, and what to use instead


#: Every translated property, for the docs and for :func:`translate`.
PROPERTIES: tuple[ForeignProperty, ...] = (
    ForeignProperty(
        "fs.s3.cse.encryptionMaterialsProvider",
        f"`{EMR_KMS_PROVIDER}` → CSE-KMS with `cse.kms_key_id`; `module:Class` → "
        "`cse.materials_provider`",
        "other Java classes (write a Python KeyProvider)",
    ),
    ForeignProperty(
        "fs.s3.cse.encryptionMaterialsProvider.uri",
        "nothing when empty",
        "a jar URI (a Java provider cannot run in Python)",
    ),
    ForeignProperty(
        "fs.s3.cse.materialsDescription.enabled",
        "nothing when false",
        "true (use `cse.materials_description`)",
    ),
    ForeignProperty(
        "fs.s3.customAWSCredentialsProvider",
        "default-chain classes → botocore's default chain; S3A's Simple/Temporary providers → "
        "the key options; anonymous providers → `s3.anon`",
        "any other class (use the default chain, key/secret/token or `profile`)",
    ),
    ForeignProperty(
        "fs.s3a.aws.credentials.provider",
        "as `fs.s3.customAWSCredentialsProvider`, a comma list",
        "as `fs.s3.customAWSCredentialsProvider`",
    ),
    ForeignProperty(
        "fs.s3a.encryption.algorithm",
        "SSE-S3 → `sse.enabled`, `sse.algorithm=AES256`; SSE-KMS → `aws:kms`; DSSE-KMS → "
        "`aws:kms:dsse`; SSE-C → `SSE-C`; CSE-KMS → `cse.enabled`",
        "CSE-CUSTOM and unknown names",
    ),
    ForeignProperty(
        "fs.s3a.encryption.key",
        "`sse.kms_key_id` (SSE-KMS, DSSE-KMS), `sse.customer_key` (SSE-C), `cse.kms_key_id` "
        "(CSE-KMS)",
        "a key without an algorithm, or with SSE-S3",
    ),
    ForeignProperty(
        "fs.s3a.server-side-encryption-algorithm",
        "as `fs.s3a.encryption.algorithm`",
        "as `fs.s3a.encryption.algorithm`",
    ),
    ForeignProperty(
        "fs.s3a.server-side-encryption.key",
        "as `fs.s3a.encryption.key`",
        "as `fs.s3a.encryption.key`",
    ),
)
_S3A_ALGORITHM = ("fs.s3a.encryption.algorithm", "fs.s3a.server-side-encryption-algorithm")
_S3A_KEY = {
    "fs.s3a.encryption.key": "fs.s3a.encryption.algorithm",
    "fs.s3a.server-side-encryption.key": "fs.s3a.server-side-encryption-algorithm",
}

Triple = tuple[str, str, Any]  # (name as given, option key or alias, value)


def _empty_or_false(value: Any) -> bool:
    return value is None or str(value).strip().lower() in ("", "false", "0", "no", "off")


def _refuse_unless(test: Callable[[Any], bool], why: str) -> Callable[[str, Any], list[Triple]]:
    def handle(name: str, value: Any) -> list[Triple]:
        if not test(value):
            raise ConfigurationError(f"{name} is {value!r}: {why}", name)
        return []

    return handle


_SINGLE: dict[str, Callable[[str, Any], list[Triple]]] = {
    "fs.s3.cse.encryptionMaterialsProvider.uri": _refuse_unless(
        _empty_or_false,
        "emrfs cannot load a Java materials provider from a jar; use CSE-KMS "
        "(fs.s3.cse.kms.keyId) or a Python provider (cse.materials_provider = 'module:Class')",
    ),
    "fs.s3.cse.materialsDescription.enabled": _refuse_unless(
        _empty_or_false,
        "emrfs does not store object URIs as materials descriptions; set "
        "cse.materials_description (a JSON object) for AES/RSA-wrapped keys instead",
    ),
    "fs.s3.customAWSCredentialsProvider": lambda name, value: [
        (name, k, v) for k, v in credential_providers(value, name).items()
    ],
    "fs.s3a.aws.credentials.provider": lambda name, value: [
        (name, k, v) for k, v in credential_providers(value, name).items()
    ],
}


def translate(pairs: Iterable[tuple[str, Any]]) -> list[Triple]:
    """``[(name, value)]`` -> ``[(name as given, option name, value)]``, foreign properties
    mapped to emrfs options; other names pass through for the option lookup."""
    pairs = list(pairs)
    given = dict(pairs)
    keys = {k: given[k] for k in _S3A_KEY if given.get(k)}
    if len(set(keys.values())) > 1:
        raise ConfigurationError(
            f"conflicting options: {' and '.join(keys)} give different keys; keep one",
            next(iter(keys)),
        )
    out: list[Triple] = []
    for name, value in pairs:
        if name in _SINGLE:
            out.extend(_SINGLE[name](name, value))
        elif name in _S3A_ALGORITHM:
            key_prop = next(k for k, a in _S3A_KEY.items() if a == name)
            key = next(iter(keys.values()), None)
            out.extend((name, k, v) for k, v in s3a_encryption(value, key, name, key_prop).items())
        elif name in _S3A_KEY:
            if not any(given.get(a) for a in _S3A_ALGORITHM) and value:
                s3a_encryption(None, value, _S3A_KEY[name], name)  # raises: a key alone
        else:
            out.append((name, name, value))
    return out
