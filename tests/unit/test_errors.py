import errno
import pickle

from botocore.exceptions import ClientError, EndpointConnectionError

from emrfs import errors


def client_error(code, status=400, message="boom"):
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


def test_table_maps_codes_to_builtins_carrying_the_path():
    cases = {
        "NoSuchKey": FileNotFoundError,
        "NoSuchBucket": FileNotFoundError,
        "AccessDenied": PermissionError,
        "PreconditionFailed": FileExistsError,
        "InvalidAccessKeyId": PermissionError,
    }
    for code, cls in cases.items():
        new = errors.translate_s3_error(client_error(code), "b/k")
        assert isinstance(new, cls), code
        assert new.filename == "b/k"
        assert isinstance(new.__cause__, ClientError)


def test_status_only_and_unknown_codes():
    assert isinstance(errors.translate_s3_error(client_error("", 404), "b/k"), FileNotFoundError)
    new = errors.translate_s3_error(client_error("WeirdThing", 400), "b/k")
    assert isinstance(new, errors.ServiceError) and "b/k" in str(new) and new.code == "WeirdThing"


def test_throttling_and_transport_errors():
    new = errors.translate_s3_error(client_error("SlowDown", 503), "b/k")
    assert isinstance(new, errors.ThrottledError) and "b/k" in str(new)
    conn = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    new = errors.translate_s3_error(conn, "b/k")
    assert isinstance(new, errors.TransportError) and "b/k" in str(new)
    assert errors.is_retryable(client_error("SlowDown", 503))
    assert not errors.is_retryable(client_error("NoSuchKey", 404))


def test_map_s3_errors_raises_from_the_cause():
    try:
        with errors.map_s3_errors("b/k"):
            raise client_error("NoSuchKey", 404)
    except FileNotFoundError as exc:
        assert exc.errno == errno.ENOENT
        assert isinstance(exc.__cause__, ClientError)
    else:
        raise AssertionError("not raised")


def test_hierarchy_and_pickling():
    for cls in (errors.InvalidPathError, errors.ConfigurationError):
        assert issubclass(cls, ValueError) and issubclass(cls, OSError)
    exc = errors.ConsistencyError("x", "b/k", paths=("b/k", "b/j"), reason="etag")
    back = pickle.loads(pickle.dumps(exc))
    assert back.paths == ("b/k", "b/j") and back.reason == "etag"
    svc = pickle.loads(pickle.dumps(errors.ServiceError("m", "p", code="C", status=500)))
    assert svc.status == 500 and svc.code == "C"


# --- the one table: S3, DynamoDB and KMS -------------------------------------------


def test_every_service_has_its_default_throttled_and_transport_rows():
    for service in (errors.S3, errors.DYNAMODB, errors.KMS):
        for pseudo in (errors.DEFAULT, errors.THROTTLED, errors.TRANSPORT):
            assert (service, pseudo) in errors.AWS_ERROR_TABLE, (service, pseudo)


def test_dynamodb_errors_name_the_table_the_operation_and_what_to_do():
    from pynamodb.exceptions import QueryError

    table = {
        "operation": "list children",
        "name": "t1",
        "resource": "metadata table 't1' at http://h",
    }
    wrapped = QueryError("query failed", cause=client_error("ValidationException"))
    new = errors.translate_aws_error(wrapped, "b/d", errors.DYNAMODB, **table)
    assert type(new) is errors.ServiceError and new.code == "ValidationException"
    assert new.path == "b/d" and new.__cause__ is wrapped
    assert all(s in str(new) for s in ("list children", "'b/d'", "'t1'", "boom"))

    throttled = client_error("ProvisionedThroughputExceededException")
    new = errors.translate_aws_error(
        throttled, "b/d", errors.DYNAMODB, retries=3, elapsed=1.5, **table
    )
    assert isinstance(new, errors.ThrottledError)
    assert "after 3 retries over 1.5 s" in str(new)
    assert "set-metadata-capacity -m t1" in str(new)

    missing = client_error("ResourceNotFoundException")
    new = errors.translate_aws_error(missing, None, errors.DYNAMODB, **table)
    assert type(new) is errors.ServiceError and "create-metadata -m t1" in str(new)


def test_kms_key_problems_are_encryption_errors_with_a_hint():
    for code, hint in (
        ("InvalidCiphertextException", "another KMS key"),
        ("NotFoundException", "no KMS key 'k1'"),
        ("DisabledException", "disabled"),
        ("AccessDeniedException", "may not use this KMS key"),
        ("SomethingNew", ""),
    ):
        new = errors.translate_aws_error(
            client_error(code),
            "b/obj",
            errors.KMS,
            operation="Decrypt",
            name="k1",
            resource="KMS key 'k1'",
        )
        assert type(new) is errors.EncryptionError and new.code == code, code
        assert "b/obj" in str(new) and hint in str(new), code


def test_throttling_transport_and_credentials_are_the_same_everywhere():
    from botocore.exceptions import NoCredentialsError

    conn = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    for service in (errors.S3, errors.DYNAMODB, errors.KMS):
        new = errors.translate_aws_error(client_error("ThrottlingException", 400), "b/k", service)
        assert isinstance(new, errors.ThrottledError) and "b/k" in str(new), service
        new = errors.translate_aws_error(conn, "b/k", service)
        assert isinstance(new, errors.TransportError) and "b/k" in str(new), service
        new = errors.translate_aws_error(NoCredentialsError(), "b/k", service)
        assert isinstance(new, PermissionError) and "AWS_PROFILE" in str(new), service


def test_translated_exactly_once_and_foreign_errors_pass_through():
    first = errors.translate_aws_error(client_error("NoSuchKey", 404), "b/k")
    assert errors.translate_aws_error(first, "other", errors.DYNAMODB) is first
    bug = ValueError("a bug, not an AWS answer")
    for service in (errors.S3, errors.DYNAMODB, errors.KMS):
        assert errors.translate_aws_error(bug, "b/k", service) is bug


def test_kms_provider_reports_an_unreachable_endpoint_as_transport():
    """Not as 'written with another key' (an EncryptionError), as it used to."""
    import asyncio

    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from emrfs.crypto.envelope import Suite
    from emrfs.crypto.keys import KmsKeyProvider

    async def go():
        config = AioConfig(retries={"total_max_attempts": 1}, connect_timeout=2)
        async with get_session().create_client(
            "kms",
            endpoint_url="http://127.0.0.1:1",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=config,
        ) as kms:
            await KmsKeyProvider("k1", kms).generate(next(iter(Suite)), "b/obj")

    try:
        asyncio.run(go())
    except errors.TransportError as exc:
        assert "b/obj" in str(exc) and "cse.kms_endpoint_url" in str(exc)
    else:
        raise AssertionError("not raised")


def test_obstore_errors_go_through_the_same_table():
    """obstore reports S3's answer only in its exception text: the table reads it there."""
    from emrfs.errors import ThrottledError, TransportError, is_obstore_error, translate_s3_error

    body = (
        "Error performing GET http://h/b/k in 2ms - Server returned non-2xx status code: "
        '{status}: <?xml version="1.0"?><Error><Code>{code}</Code><Message>{message}'
        "</Message></Error>\n\nDebug source:\nNotFound {{}}"
    )
    missing = FileNotFoundError(
        body.format(
            status="404 Not Found", code="NoSuchKey", message="The specified key does not exist."
        )
    )
    assert is_obstore_error(missing)
    mine = translate_s3_error(missing, "b/k")
    assert isinstance(mine, FileNotFoundError) and mine is not missing and mine.filename == "b/k"
    no_bucket = FileNotFoundError(
        body.format(status="404 Not Found", code="NoSuchBucket", message="no bucket")
    )
    assert "emrfs mb s3://b" in str(translate_s3_error(no_bucket, "b/k"))
    slow = type("GenericError", (Exception,), {"__module__": "obstore.exceptions"})(
        body.format(status="503 Service Unavailable", code="SlowDown", message="slow")
    )
    assert isinstance(translate_s3_error(slow, "b/k"), ThrottledError)
    refused = type("GenericError", (Exception,), {"__module__": "obstore.exceptions"})(
        "Generic S3 error: Error performing HEAD http://127.0.0.1:1/b/k - HTTP error: error "
        "sending request\n\nDebug source:\nkind: Connect"
    )
    assert isinstance(translate_s3_error(refused, "b/k"), TransportError)
    refused.args = (refused.args[0] + ' {\n Os {\n code: 111,\n message: "Connection refused",',)
    assert "(Connection refused)" in str(translate_s3_error(refused, "b/k"))
    # a FileNotFoundError emrfs raised itself stays as it is
    own = FileNotFoundError(2, "No such file", "b/k")
    assert translate_s3_error(own, "b/k") is own
