import dataclasses
import json
import re

import pytest

from emrfs import config
from emrfs.errors import ConfigurationError


def load(opts=None, env=None):
    return config.load(opts or {}, environ=env or {})


def test_defaults_are_emrfs_documented_ones():
    o = load()
    assert o.consistency.enabled is False
    assert o.consistency.table_name == "EmrFSMetadata"
    assert o.consistency.retry_policy_type == "exponential"
    assert o.s3.fs_block_size == 128 * 1024 * 1024


def test_all_spellings_reach_one_option():
    for spelling in (
        {"consistency.retry_count": 3},
        {"fs.s3.consistent.retryCount": "3"},
        {"consistency": {"retry_count": 3}},
    ):
        assert load(spelling).consistency.retry_count == 3
    assert load({"consistent": True}).consistency.enabled is True
    assert load({"key": "AK", "secret": "SK"}).s3.access_key_id == "AK"
    assert load({"client_kwargs": {"endpoint_url": "http://x:1"}}).s3.endpoint_url == "http://x:1"


def test_priority_defaults_site_env_storage_options(tmp_path):
    site = tmp_path / "emrfs-site.json"
    site.write_text(
        json.dumps({"fs.s3.consistent.retryCount": "4", "fs.s3.consistent.retryPeriodSeconds": "2"})
    )
    env = {"EMRFS_SITE": str(site), "EMRFS_CONSISTENCY_RETRY_PERIOD_SECONDS": "7"}
    o = load({}, env)
    assert o.consistency.retry_count == 4 and o.consistency.retry_period_seconds == 7
    o = load({"fs.s3.consistent.retryCount": 9}, env)
    assert o.consistency.retry_count == 9


def test_hadoop_xml_and_emr_classification_site_files(tmp_path):
    xml = tmp_path / "emrfs-site.xml"
    xml.write_text(
        "<configuration><property><name>fs.s3.consistent</name><value>true</value>"
        "</property><property><name>fs.s3.impl</name><value>x</value></property>"
        "</configuration>"
    )
    assert load({"site": str(xml)}).consistency.enabled is True
    emr = tmp_path / "config.json"
    emr.write_text(
        json.dumps(
            [
                {"Classification": "core-site", "Properties": {"a": "b"}},
                {
                    "Classification": "emrfs-site",
                    "Properties": {"fs.s3.consistent.metadata.tableName": "T01"},
                },
            ]
        )
    )
    assert load({"site": str(emr)}).consistency.table_name == "T01"


def test_unknown_key_fails_naming_it():
    with pytest.raises(ConfigurationError, match=r"fs\.s3\.consistent\.retryCuont"):
        load({"fs.s3.consistent.retryCuont": 3})
    with pytest.raises(ConfigurationError, match="EMRFS_NOPE"):
        load({}, {"EMRFS_NOPE": "1"})


def test_conflicting_spellings_fail_naming_both():
    with pytest.raises(ConfigurationError) as info:
        load({"consistent": True, "fs.s3.consistent": "false"})
    assert "consistent" in str(info.value) and "fs.s3.consistent" in str(info.value)


def test_conflicting_options_fail_naming_both():
    with pytest.raises(ConfigurationError, match=r"enableServerSideEncryption.*cse\.enabled"):
        load({"sse.enabled": True, "cse.enabled": True})
    with pytest.raises(ConfigurationError, match="require_tls"):
        load({"require_tls": True, "endpoint_url": "http://127.0.0.1:9"})


def test_bad_values_are_named():
    with pytest.raises(ConfigurationError, match=r"retry_count.*'many'.*an integer"):
        load({"consistency.retry_count": "many"})
    with pytest.raises(ConfigurationError, match="part_size"):
        load({"part_size": "1k"})
    assert load({"part_size": "64MiB"}).s3.part_size == 64 * 1024 * 1024


def test_unreadable_or_malformed_site_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read emrfs-site file"):
        load({"site": str(tmp_path / "missing.xml")})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"bad\.json"):
        load({"site": str(bad)})


def test_per_bucket_and_prefix_overrides():
    o = load(
        {
            "fs.s3.bucket.logs.fs.s3.consistent": "true",
            "overrides": {"data/secret": {"sse": {"enabled": True, "algorithm": "aws:kms"}}},
        }
    )
    assert o.consistency.enabled is False
    assert o.for_path("emrfs://logs/x").consistency.enabled is True
    assert o.for_path("data/public/x").sse.enabled is False
    assert o.for_path("data/secret/x").sse.algorithm == "aws:kms"
    with pytest.raises(ConfigurationError, match="cannot be overridden"):
        load({"overrides": {"b": {"endpoint_url": "http://x"}}})


def test_options_tree_is_frozen():
    o = load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.s3.part_size = 1


# --- every option typed and bounded at construction (data-safety issue, item 10) ----------

# One value each option refuses, for every option (a new option needs an entry here).
BAD_VALUES = {
    "s3.multipart_purge": "maybe",
    "s3.multipart_purge_age": -1,
    "cache.block_size": 4096,
    "cache.capacity_bytes": -1,
    "cache.directories": ["/a", "  "],
    "cache.enabled": "maybe",
    "cache.encrypt": "maybe",
    "cache.free_space_floor": 1.5,
    "cache.key_file": 3.5,
    "cache.prefetch_blocks": -1,
    "cache.verify": "sometimes",
    "consistency.auto_create": "maybe",
    "consistency.dynamodb_endpoint": "ftp://host/x",
    "consistency.dynamodb_max_retries": -1,
    "consistency.dynamodb_retry_base_seconds": -0.1,
    "consistency.enabled": "maybe",
    "consistency.etag_verification": "maybe",
    "consistency.fast_list": "maybe",
    "consistency.read_capacity": -5,
    "consistency.retry_count": -1,
    "consistency.retry_period_seconds": -1,
    "consistency.retry_policy_type": "linear",
    "consistency.table_name": "t",
    "consistency.throw_exception_on_inconsistency": "maybe",
    "consistency.tombstone_ttl_seconds": 0,
    "consistency.write_capacity": 10**6,
    "cse.aes_key": "c2hvcnQ=",
    "cse.allow_legacy": "maybe",
    "cse.commitment_policy": "LAX",
    "cse.enabled": "maybe",
    "cse.encryption_context": "[1, 2]",
    "cse.format": "v9",
    "cse.instruction_suffix": "",
    "cse.kms_endpoint_url": "127.0.0.1:4566",
    "cse.kms_key_id": 3.5,
    "cse.listing_lengths": "guess",
    "cse.materials_description": "{",
    "cse.materials_provider": "not a class!",
    "cse.rsa_private_key_file": "/nonexistent/k.pem",
    "cse.rsa_public_key_file": "/nonexistent/k.pub",
    "cse.segment_size": 100,
    "cse.storage_mode": "Sidecar",
    "cse.unauthenticated_range_reads": "maybe",
    "ephemeral.enabled": "maybe",
    "ephemeral.lifetime_seconds": -1,
    "ephemeral.patterns": ["_temporary", ""],
    "ephemeral.prefixes": 7,
    "ephemeral.replication": 0,
    "ephemeral.task_commit": "eventually",
    "s3.access_key_id": 3.5,
    "s3.addressing_style": "dns",
    "s3.anon": "maybe",
    "s3.ca_bundle": "/nonexistent/ca.pem",
    "s3.connect_timeout": 0,
    "s3.copy_part_size": "1MiB",
    "s3.copy_threshold": "6GiB",
    "s3.create_checks": "maybe",
    "s3.endpoint_url": "localhost:9000",
    "s3.fs_block_size": 0,
    "s3.group": 3.5,
    "s3.max_attempts": 0,
    "s3.max_concurrency": 0,
    "s3.max_pool_connections": 0,
    "s3.multipart_threshold": -1,
    "s3.owner": 3.5,
    "s3.part_size": "1MiB",
    "s3.profile": 3.5,
    "s3.read_block_size": 0,
    "s3.read_timeout": -5,
    "s3.region": "US East 1",
    "s3.require_tls": "maybe",
    "s3.retry_base_seconds": -1,
    "s3.retry_max_seconds": float("nan"),
    "s3.secret_access_key": 3.5,
    "s3.session_token": 3.5,
    "s3.transport": "curl",
    "s3.upload_concurrency": 0,
    "s3.status_tail_bytes": "17MiB",
    "s3.status_reuse_seconds": -1,
    "sse.algorithm": "AES128",
    "sse.bucket_key_enabled": "maybe",
    "sse.customer_key": "c2hvcnQ=",
    "sse.enabled": "maybe",
    "sse.kms_key_id": 3.5,
}


SECRETS = {"s3.secret_access_key", "s3.session_token", "sse.customer_key", "cse.aes_key"}


def test_secrets_are_never_shown():
    assert {
        k for k, s in config.REGISTRY.items() if s.rule is not None and s.rule.secret
    } == SECRETS
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    with pytest.raises(ConfigurationError) as info:
        load({"secret": secret, "fs.s3a.secret.key": secret[::-1]})
    assert secret not in str(info.value) and secret[::-1] not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        load({"sse": {"algorithm": "SSE-C", "customer_key": secret}})
    assert secret not in str(info.value)


def test_every_option_has_a_bad_value_in_this_test():
    assert set(BAD_VALUES) == set(config.REGISTRY)


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_every_option_refuses_a_bad_value_at_construction_naming_key_value_and_range(key):
    bad = BAD_VALUES[key]
    with pytest.raises(ConfigurationError) as info:
        load({key: bad})
    message = str(info.value)
    assert repr(key) in message and "it takes" in message, message
    if key in SECRETS:  # a key or credential never appears in a message (or a log)
        assert repr(bad) not in message and "<secret, " in message, message
    else:
        assert repr(bad) in message, message


@pytest.mark.parametrize("key", sorted(k for k, s in config.REGISTRY.items() if s.type is not bool))
def test_every_option_refuses_a_value_of_the_wrong_type(key):
    spec = config.REGISTRY[key]
    bad = "fast" if spec.type is float else 2.5  # 2.5 is neither a count nor a name
    with pytest.raises(ConfigurationError, match=re.escape(repr(key))):
        load({key: bad})


def test_defaults_satisfy_their_own_rules():
    for key, spec in config.REGISTRY.items():
        if spec.default is not None:
            assert config.coerce(spec, spec.default, key, "defaults") == spec.default


def test_zero_concurrency_is_refused_instead_of_hanging_every_write():
    with pytest.raises(
        ConfigurationError,
        match=r"'max_concurrency'.* 0; it takes an integer "
        r"from 1 to 10000",
    ):
        load({"max_concurrency": 0})
    with pytest.raises(ConfigurationError, match="EMRFS_MAX_CONCURRENCY"):
        load({}, {"EMRFS_MAX_CONCURRENCY": "0"})


def test_out_of_range_values_named_in_each_source(tmp_path):
    with pytest.raises(ConfigurationError, match=r"retry_count'.*-1"):
        load({"consistency": {"retry_count": -1}})
    with pytest.raises(ConfigurationError, match=r"'cache.capacity_bytes'.*-1"):
        load({"cache.capacity_bytes": -1})
    with pytest.raises(ConfigurationError, match=r"'read_timeout'.*-5"):
        load({"read_timeout": -5})
    site = tmp_path / "emrfs-site.xml"
    site.write_text(
        "<configuration><property><name>fs.s3.cse.format</name><value>v9</value>"
        "</property></configuration>"
    )
    with pytest.raises(
        ConfigurationError,
        match=r"fs.s3.cse.format.*'v9'.*'v3', 'v2', "
        r"'segmented'",
    ) as info:
        load({"site": str(site)})
    assert "emrfs-site.xml" in str(info.value)


def test_overrides_must_be_a_table_of_prefixes():
    for bad in ("b", ["b"], {"b": "x"}, {"": {"consistent": True}}):
        with pytest.raises(ConfigurationError, match=r"option 'overrides'.*bucket/prefix"):
            load({"overrides": bad})
    with pytest.raises(ConfigurationError, match=r"option 'consistency'.*dict"):
        load({"consistency": 5})


def test_integers_are_not_truncated_and_booleans_are_not_counts():
    with pytest.raises(ConfigurationError, match=r"1\.5"):
        load({"max_concurrency": 1.5})
    with pytest.raises(ConfigurationError, match="True"):
        load({"retry_count": True} if False else {"consistency.retry_count": True})
    with pytest.raises(ConfigurationError, match="inf"):
        load({"read_timeout": float("inf")})
    assert load({"max_concurrency": 4.0}).s3.max_concurrency == 4


def test_hadoop_strings_are_still_coerced(tmp_path):
    site = tmp_path / "emrfs-site.xml"
    props = {
        "fs.s3.consistent.retryCount": "10",
        "fs.s3.consistent": "true",
        "fs.s3.consistent.retryPeriodSeconds": "0.5",
        "fs.s3.multipart.part.size": "64M",
        "fs.s3.cache.dirs": "/a, /b",
        "fs.s3.serverSideEncryption.kms.keyId": "",
    }
    site.write_text(
        "<configuration>"
        + "".join(
            f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items()
        )
        + "</configuration>"
    )
    o = load({"site": str(site)})
    assert o.consistency.retry_count == 10 and o.consistency.enabled is True
    assert o.consistency.retry_period_seconds == 0.5
    assert o.s3.part_size == 64 * 1024 * 1024
    assert o.cache.directories == ("/a", "/b")
    assert o.sse.kms_key_id is None  # an empty <value/> leaves an optional option unset
    o = load({}, {"EMRFS_CONSISTENCY_RETRY_COUNT": "10", "EMRFS_ANON": "true"})
    assert o.consistency.retry_count == 10 and o.s3.anon is True


def test_conflicting_combinations_name_both_options():
    cases = [
        ({"cse.format": "v2"}, ("cse.format", "cse.commitment_policy")),
        (
            {"cse.commitment_policy": "FORBID_ENCRYPT_ALLOW_DECRYPT"},
            ("cse.format", "cse.commitment_policy"),
        ),
        (
            {"retry_base_seconds": 5, "retry_max_seconds": 1},
            ("s3.retry_base_seconds", "s3.retry_max_seconds"),
        ),
        (
            {"require_tls": True, "consistency.dynamodb_endpoint": "http://127.0.0.1:9"},
            ("s3.require_tls", "consistency.dynamodb_endpoint"),
        ),
    ]
    for opts, keys in cases:
        with pytest.raises(ConfigurationError, match="conflicting options") as info:
            load(opts)
        assert all(k in str(info.value) for k in keys), (opts, str(info.value))


# --- EMR's and S3A's class names and algorithms (gateway/EMR issue, item 5) ---------------

EMR_KMS = "com.amazon.ws.emr.hadoop.fs.cse.KMSEncryptionMaterialsProvider"


def test_emr_cse_kms_properties_are_cse_kms_not_a_conflict():
    o = load(
        {
            "fs.s3.cse.enabled": "true",
            "fs.s3.cse.encryptionMaterialsProvider": EMR_KMS,
            "fs.s3.cse.kms.keyId": "K",
        }
    )
    assert o.cse.enabled and o.cse.kms_key_id == "K" and o.cse.materials_provider is None
    # per bucket too
    o = load(
        {
            "fs.s3.bucket.b.fs.s3.cse.encryptionMaterialsProvider": EMR_KMS,
            "fs.s3.bucket.b.fs.s3.cse.kms.keyId": "K",
        }
    )
    assert o.for_path("b/x").cse.kms_key_id == "K"


def test_java_materials_providers_are_refused_naming_the_class_and_the_alternative():
    with pytest.raises(
        ConfigurationError, match=r"com\.acme\.MyProvider.*fs\.s3\.cse\.kms\.keyId.*module:Class"
    ):
        load(
            {
                "fs.s3.cse.enabled": "true",
                "fs.s3.cse.encryptionMaterialsProvider": "com.acme.MyProvider",
            }
        )
    with pytest.raises(ConfigurationError, match="jar"):
        load({"fs.s3.cse.encryptionMaterialsProvider.uri": "s3://b/provider.jar"})
    assert load({"fs.s3.cse.materialsDescription.enabled": "false"}).cse.enabled is False
    with pytest.raises(ConfigurationError, match="materials_description"):
        load({"fs.s3.cse.materialsDescription.enabled": "true"})


@pytest.mark.parametrize(
    "algorithm,key,expected",
    [
        ("SSE-S3", None, {"sse.enabled": True, "sse.algorithm": "AES256"}),
        ("SSE-KMS", "K", {"sse.enabled": True, "sse.algorithm": "aws:kms", "sse.kms_key_id": "K"}),
        (
            "DSSE-KMS",
            "K",
            {"sse.enabled": True, "sse.algorithm": "aws:kms:dsse", "sse.kms_key_id": "K"},
        ),
        (
            "SSE-C",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            {
                "sse.enabled": True,
                "sse.algorithm": "SSE-C",
                "sse.customer_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            },
        ),
        ("CSE-KMS", "K", {"cse.enabled": True, "cse.kms_key_id": "K"}),
    ],
)
@pytest.mark.parametrize(
    "spelling",
    [
        ("fs.s3a.encryption.algorithm", "fs.s3a.encryption.key"),
        ("fs.s3a.server-side-encryption-algorithm", "fs.s3a.server-side-encryption.key"),
    ],
)
def test_s3a_encryption_algorithms(algorithm, key, expected, spelling):
    props = {spelling[0]: algorithm, **({spelling[1]: key} if key else {})}
    flat = load(props).flat()
    assert {k: flat[k] for k in expected} == expected


def test_s3a_encryption_refusals():
    with pytest.raises(ConfigurationError, match=r"fs\.s3a\.encryption\.algorithm.*CSE-CUSTOM"):
        load({"fs.s3a.encryption.algorithm": "CSE-CUSTOM"})
    with pytest.raises(ConfigurationError, match=r"fs\.s3a\.encryption\.key.*algorithm"):
        load({"fs.s3a.encryption.key": "K"})
    with pytest.raises(ConfigurationError, match="takes no key"):
        load({"fs.s3a.encryption.algorithm": "SSE-S3", "fs.s3a.encryption.key": "K"})
    with pytest.raises(ConfigurationError, match="conflicting"):
        load(
            {
                "fs.s3a.encryption.algorithm": "SSE-KMS",
                "fs.s3a.server-side-encryption-algorithm": "SSE-S3",
            }
        )


@pytest.mark.parametrize(
    "provider",
    [
        "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
        "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
        "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
        "com.amazonaws.auth.InstanceProfileCredentialsProvider",
        "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider,"
        "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider,"
        "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
    ],
)
def test_default_chain_credential_providers_mean_the_default_chain(provider):
    for prop in ("fs.s3a.aws.credentials.provider", "fs.s3.customAWSCredentialsProvider"):
        o = load({prop: provider})
        assert o.s3.anon is False and o.s3.access_key_id is None and o.s3.profile is None


def test_simple_provider_reads_its_keys_and_others_are_refused():
    provider = "fs.s3a.aws.credentials.provider"
    o = load(
        {
            provider: "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "fs.s3a.access.key": "AK",
            "fs.s3a.secret.key": "SK",
        }
    )
    assert (o.s3.access_key_id, o.s3.secret_access_key) == ("AK", "SK")
    anonymous = load({provider: "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"})
    assert anonymous.s3.anon is True
    with pytest.raises(
        ConfigurationError, match=r"fs.s3.customAWSCredentialsProvider.*com\.acme\.Creds.*profile"
    ):
        load({"fs.s3.customAWSCredentialsProvider": "com.acme.Creds"})


def test_emr_core_site_s3a_settings_are_read_and_unknown_security_ones_refused(tmp_path):
    # EMR 7.10+ configures S3A, encryption included, in core-site
    site = tmp_path / "configurations.json"
    site.write_text(
        json.dumps(
            [
                {
                    "Classification": "core-site",
                    "Properties": {
                        "fs.defaultFS": "hdfs://node:8020",
                        "fs.s3a.fast.upload": "true",
                        "fs.s3a.encryption.algorithm": "CSE-KMS",
                        "fs.s3a.encryption.key": "K",
                    },
                },
                {"Classification": "emrfs-site", "Properties": {"fs.s3.consistent": "true"}},
            ]
        )
    )
    o = load({"site": str(site)})
    assert o.cse.enabled and o.cse.kms_key_id == "K" and o.consistency.enabled
    site.write_text(
        json.dumps(
            [
                {
                    "Classification": "core-site",
                    "Properties": {
                        "fs.s3a.encryption.algorithm": "CSE-KMS",
                        "fs.s3a.encryption.key": "K",
                        "fs.s3a.encryption.cse.kms.region": "eu-west-1",
                    },
                }
            ]
        )
    )
    with pytest.raises(ConfigurationError, match=r"fs\.s3a\.encryption\.cse\.kms\.region"):
        load({"site": str(site)})
    site.write_text(
        json.dumps(
            [
                {
                    "Classification": "core-site",
                    "Properties": {"fs.s3a.encryption.algorithm": "SSE-S3"},
                },
                {"Classification": "emrfs-site", "Properties": {"fs.s3.cse.enabled": "true"}},
            ]
        )
    )
    with pytest.raises(ConfigurationError, match=r"conflicting.*sse\.enabled.*cse\.enabled"):
        load({"site": str(site)})


def test_a_registered_retry_policy_is_accepted_by_name():
    from emrfs.consistency.policy import FixedRetryPolicy, register_retry_policy

    with pytest.raises(ConfigurationError, match="register_retry_policy"):
        load({"fs.s3.consistent.retryPolicyType": "config-test-policy"})
    register_retry_policy("config-test-policy", lambda count, period: FixedRetryPolicy(1, 0))
    assert (
        load(
            {"fs.s3.consistent.retryPolicyType": "Config-Test-Policy"}
        ).consistency.retry_policy_type
        == "Config-Test-Policy"
    )
    assert (
        load({"fs.s3.consistent.retryPolicyType": "EXPONENTIAL"}).consistency.retry_policy_type
        == "EXPONENTIAL"
    )
