"""The embedded moto server (emrfs.testing._moto_main) keeps connections open between
requests, and a body it does not read never reaches the next request's parser."""

from __future__ import annotations

import http.client
import urllib.parse


def test_one_connection_serves_requests_whose_bodies_moto_leaves_unread(
    emrfs_endpoint, emrfs_bucket
):
    url = urllib.parse.urlsplit(emrfs_endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        # into a bucket that does not exist: moto answers without reading the body
        conn.request("PUT", f"/{emrfs_bucket}-none/k", body=b"x" * 100_000)
        first = conn.getresponse()
        assert first.status == 404 and b"NoSuchBucket" in first.read()
        sock = conn.sock
        assert sock is not None, "the server closed the connection after one request"
        conn.request(
            "PUT", f"/{emrfs_bucket}/c", body=iter([b"ab" * 500, b"cd" * 500]), encode_chunked=True
        )
        chunked = conn.getresponse()  # unsigned and chunked: moto's answer varies
        assert chunked.status in (200, 403), chunked.status
        chunked.read()
        conn.request("HEAD", f"/{emrfs_bucket}/c")
        head = conn.getresponse()
        assert head.status in (403, 404) and head.read() == b""  # no body after a HEAD
        conn.request("GET", "/moto-api/")
        page = conn.getresponse()
        assert page.status == 200 and len(page.read()) == int(page.getheader("Content-Length"))
        assert conn.sock is sock  # all four on the first connection
    finally:
        conn.close()
