import errno
import pickle

from botocore.exceptions import ClientError, EndpointConnectionError

from emrfs import errors


def client_error(code, status=400, message="boom"):
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def test_table_maps_codes_to_builtins_carrying_the_path():
    cases = {"NoSuchKey": FileNotFoundError, "NoSuchBucket": FileNotFoundError,
             "AccessDenied": PermissionError, "PreconditionFailed": FileExistsError,
             "InvalidAccessKeyId": PermissionError}
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
