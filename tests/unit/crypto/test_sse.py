import base64
import hashlib

import pytest

from emrfs import config
from emrfs.config import SSEOptions
from emrfs.crypto import sse
from emrfs.errors import ConfigurationError

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()
MD5_B64 = base64.b64encode(hashlib.md5(KEY).digest()).decode()


def test_off_means_no_kwargs():
    off = SSEOptions()
    assert sse.write_kwargs(off) == sse.part_kwargs(off) == sse.read_kwargs(off) == {}
    assert sse.copy_kwargs(off, off) == sse.copy_part_kwargs(off, off) == {}


def test_sse_s3():
    on = SSEOptions(enabled=True)
    assert sse.write_kwargs(on) == {"ServerSideEncryption": "AES256"}
    assert sse.part_kwargs(on) == {} and sse.read_kwargs(on) == {}


def test_sse_kms_key_id_implies_kms_and_bucket_key():
    on = SSEOptions(enabled=True, kms_key_id="alias/k", bucket_key_enabled=True)
    assert sse.write_kwargs(on) == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/k",
        "BucketKeyEnabled": True,
    }
    assert sse.write_kwargs(SSEOptions(enabled=True, algorithm="aws:kms")) == {
        "ServerSideEncryption": "aws:kms"
    }


def test_sse_c_everywhere():
    on = SSEOptions(enabled=True, algorithm="SSE-C", customer_key=KEY_B64)
    c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY_B64, "SSECustomerKeyMD5": MD5_B64}
    assert sse.write_kwargs(on) == c
    assert sse.part_kwargs(on) == c
    assert sse.read_kwargs(on) == c
    src = {
        "CopySourceSSECustomerAlgorithm": "AES256",
        "CopySourceSSECustomerKey": KEY_B64,
        "CopySourceSSECustomerKeyMD5": MD5_B64,
    }
    assert sse.copy_kwargs(on, on) == {**c, **src}
    assert sse.copy_part_kwargs(on, on) == {**c, **src}
    # copying an SSE-C source to an SSE-S3 destination
    assert sse.copy_kwargs(SSEOptions(enabled=True), on) == {
        "ServerSideEncryption": "AES256",
        **src,
    }


def test_sse_c_key_still_sent_on_reads_when_writes_are_off():
    off = SSEOptions(enabled=False, algorithm="SSE-C", customer_key=KEY_B64)
    assert sse.write_kwargs(off) == {}
    assert sse.read_kwargs(off)["SSECustomerKeyMD5"] == MD5_B64


@pytest.mark.parametrize(
    "bad,match",
    [("not base64!!", "not valid base64"), (base64.b64encode(b"x" * 16).decode(), "16 bytes")],
)
def test_bad_customer_key(bad, match):
    opts = SSEOptions(enabled=True, algorithm="SSE-C", customer_key=bad)
    with pytest.raises(ConfigurationError, match=match) as info:
        sse.write_kwargs(opts)
    assert info.value.path == "sse.customer_key"


def test_per_prefix_overrides_resolve_through_options():
    options = config.load(
        {"overrides": {"b/secret": {"sse": {"enabled": True, "kms_key_id": "k1"}}}}, environ={}
    )
    assert sse.write_kwargs(options.for_path("b/public/x").sse) == {}
    assert sse.write_kwargs(options.for_path("emrfs://b/secret/x").sse)["SSEKMSKeyId"] == "k1"
