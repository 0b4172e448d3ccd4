"""Benchmarks: emrfs against the clients a user would otherwise pick, on one server.

``python -m benchmarks.bench_s3 --help``; see ``benchmarks/README.md``.
"""
