"""Object transport: the only package that speaks to S3."""

from .client import S3Client

__all__ = ["S3Client"]
