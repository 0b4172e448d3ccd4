import json

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
    for spelling in ({"consistency.retry_count": 3}, {"fs.s3.consistent.retryCount": "3"},
                     {"consistency": {"retry_count": 3}}):
        assert load(spelling).consistency.retry_count == 3
    assert load({"consistent": True}).consistency.enabled is True
    assert load({"key": "AK", "secret": "SK"}).s3.access_key_id == "AK"
    assert load({"client_kwargs": {"endpoint_url": "http://x:1"}}).s3.endpoint_url == "http://x:1"


def test_priority_defaults_site_env_storage_options(tmp_path):
    site = tmp_path / "emrfs-site.json"
    site.write_text(json.dumps({"fs.s3.consistent.retryCount": "4",
                                "fs.s3.consistent.retryPeriodSeconds": "2"}))
    env = {"EMRFS_SITE": str(site), "EMRFS_CONSISTENCY_RETRY_PERIOD_SECONDS": "7"}
    o = load({}, env)
    assert o.consistency.retry_count == 4 and o.consistency.retry_period_seconds == 7
    o = load({"fs.s3.consistent.retryCount": 9}, env)
    assert o.consistency.retry_count == 9


def test_hadoop_xml_and_emr_classification_site_files(tmp_path):
    xml = tmp_path / "emrfs-site.xml"
    xml.write_text("<configuration><property><name>fs.s3.consistent</name><value>true</value>"
                   "</property><property><name>fs.s3.impl</name><value>x</value></property>"
                   "</configuration>")
    assert load({"site": str(xml)}).consistency.enabled is True
    emr = tmp_path / "config.json"
    emr.write_text(json.dumps([{"Classification": "core-site", "Properties": {"a": "b"}},
                               {"Classification": "emrfs-site",
                                "Properties": {"fs.s3.consistent.metadata.tableName": "T1"}}]))
    assert load({"site": str(emr)}).consistency.table_name == "T1"


def test_unknown_key_fails_naming_it():
    with pytest.raises(ConfigurationError, match="fs.s3.consistent.retryCuont"):
        load({"fs.s3.consistent.retryCuont": 3})
    with pytest.raises(ConfigurationError, match="EMRFS_NOPE"):
        load({}, {"EMRFS_NOPE": "1"})


def test_conflicting_spellings_fail_naming_both():
    with pytest.raises(ConfigurationError) as info:
        load({"consistent": True, "fs.s3.consistent": "false"})
    assert "consistent" in str(info.value) and "fs.s3.consistent" in str(info.value)


def test_conflicting_options_fail_naming_both():
    with pytest.raises(ConfigurationError, match="enableServerSideEncryption.*cse.enabled"):
        load({"sse.enabled": True, "cse.enabled": True})
    with pytest.raises(ConfigurationError, match="require_tls"):
        load({"require_tls": True, "endpoint_url": "http://127.0.0.1:9"})


def test_bad_values_are_named():
    with pytest.raises(ConfigurationError, match="retry_count.*not a int|not a int"):
        load({"consistency.retry_count": "many"})
    with pytest.raises(ConfigurationError, match="part_size"):
        load({"part_size": "1k"})
    assert load({"part_size": "64MiB"}).s3.part_size == 64 * 1024 * 1024


def test_unreadable_or_malformed_site_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read emrfs-site file"):
        load({"site": str(tmp_path / "missing.xml")})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="bad.json"):
        load({"site": str(bad)})


def test_per_bucket_and_prefix_overrides():
    o = load({"fs.s3.bucket.logs.fs.s3.consistent": "true",
              "overrides": {"data/secret": {"sse": {"enabled": True, "algorithm": "aws:kms"}}}})
    assert o.consistency.enabled is False
    assert o.for_path("emrfs://logs/x").consistency.enabled is True
    assert o.for_path("data/public/x").sse.enabled is False
    assert o.for_path("data/secret/x").sse.algorithm == "aws:kms"
    with pytest.raises(ConfigurationError, match="cannot be overridden"):
        load({"overrides": {"b": {"endpoint_url": "http://x"}}})


def test_options_tree_is_frozen():
    o = load()
    with pytest.raises(Exception):
        o.s3.part_size = 1
