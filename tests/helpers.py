"""Small helpers shared by the tests."""

from __future__ import annotations


def record_s3_calls(fs, methods_only: bool = True) -> list:
    """Spy on ``fs.s3.call``: returns a list that fills with (method, kwargs) or method names."""
    calls: list = []
    original = fs.s3.call

    async def spy(method, path, **kwargs):
        calls.append(method if methods_only else (method, kwargs))
        return await original(method, path, **kwargs)

    fs.s3.call = spy
    return calls
