"""The clients a benchmark variant may use, built for one endpoint.

One :class:`Clients` per endpoint (the server, or the counting proxy in front
of it).  Each client is built once and kept, as a user would keep it; the
fsspec filesystems have their listing caches dropped each time they are
handed out, so no round reads another round's listing.  Credentials and region
come from the usual ``AWS_*`` variables (the harness sets test values).
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse

#: name -> what to install when the import fails
_PACKAGES = {
    "boto3": "boto3",
    "s3fs": "s3fs",
    "pyarrow": "pyarrow",
    "aiobotocore": "aiobotocore",
    "obstore": "obstore",
    "emrfs": None,
}


def unavailable(requirement: str) -> str | None:
    """Why a variant needing ``requirement`` cannot run here, or None if it can."""
    if requirement == "emrfs":
        import emrfs

        # Look beside the emrfs package in use: an editable install of another
        # tree would otherwise lend its filesystem module to this one.
        if not os.path.exists(os.path.join(os.path.dirname(emrfs.__file__), "filesystem.py")):
            return (
                "emrfs.filesystem is not on this branch yet "
                "(git merge main once the filesystem lands)"
            )
        return None
    module = {"pyarrow": "pyarrow.fs"}.get(requirement, requirement)
    try:
        __import__(module)
    except ImportError:
        return f"{requirement} is not installed (pip install {_PACKAGES[requirement]})"
    return None


class AioS3:
    """An aiobotocore S3 client on a private event loop, driven synchronously."""

    def __init__(self, endpoint_url: str, max_pool_connections: int = 32):
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self.loop = asyncio.new_event_loop()
        self._ctx = get_session().create_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=_region(),
            config=AioConfig(max_pool_connections=max_pool_connections),
        )
        self.client = self.loop.run_until_complete(self._ctx.__aenter__())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self._ctx.__aexit__(None, None, None))
        self.loop.close()


class Clients:
    """Lazily built, cached clients for ``endpoint_url``."""

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url
        self._cache: dict[str, object] = {}

    def _get(self, name: str, build):
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def boto3(self):
        """A boto3 S3 client with a pool large enough for 32 threads."""
        import boto3
        from botocore.config import Config

        return self._get(
            "boto3",
            lambda: boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=_region(),
                config=Config(max_pool_connections=32),
            ),
        )

    def s3fs(self):
        """``s3fs.S3FileSystem`` with default settings (listing cache cleared)."""
        import s3fs

        # No region in client_kwargs: with us-east-1 there, s3fs sends a
        # location constraint on bucket creation that moto and LocalStack reject.
        fs = self._get(
            "s3fs",
            lambda: s3fs.S3FileSystem(endpoint_url=self.endpoint_url, skip_instance_cache=True),
        )
        fs.invalidate_cache()
        return fs

    def pyarrow(self):
        """``pyarrow.fs.S3FileSystem`` pointed at the endpoint."""
        from pyarrow import fs as pafs

        parts = urllib.parse.urlsplit(self.endpoint_url)
        return self._get(
            "pyarrow",
            lambda: pafs.S3FileSystem(
                endpoint_override=parts.netloc,
                scheme=parts.scheme or "http",
                region=_region(),
                access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
                secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
            ),
        )

    def emrfs(self):
        """The emrfs filesystem, made the way a user makes it (listing cache cleared)."""
        import fsspec

        fs = self._get(
            "emrfs",
            lambda: fsspec.filesystem(
                "emrfs", endpoint_url=self.endpoint_url, skip_instance_cache=True
            ),
        )
        fs.invalidate_cache()
        return fs

    def obstore(self, bucket: str):
        """obstore's ``S3Store`` (Rust ``object_store``) for ``bucket``, its raw API."""

        def build():
            from obstore.store import S3Store

            return S3Store(
                bucket,
                config={
                    "endpoint": self.endpoint_url,
                    "region": _region(),
                    "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
                    "secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                    "virtual_hosted_style_request": False,
                },
                client_options={"allow_http": self.endpoint_url.startswith("http://")},
            )

        return self._get(f"obstore:{bucket}", build)

    def emrfs_with(self, **options):
        """Another emrfs instance with ``options`` (CSE, the consistent view), kept per
        set of options like the default one."""
        from emrfs import EmrFileSystem

        name = "emrfs:" + repr(sorted(options.items()))
        fs = self._get(
            name,
            lambda: EmrFileSystem(
                endpoint_url=self.endpoint_url, skip_instance_cache=True, **options
            ),
        )
        fs.invalidate_cache()
        return fs

    def aio(self) -> AioS3:
        """An aiobotocore client with 32 connections on its own loop."""
        return self._get("aio", lambda: AioS3(self.endpoint_url))

    def close(self) -> None:
        aio = self._cache.pop("aio", None)
        if aio is not None:
            aio.close()
        self._cache.clear()


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
