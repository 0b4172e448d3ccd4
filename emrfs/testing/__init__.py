"""Test support shipped with emrfs, for our tests and for anyone's.

* :class:`LocalServers` starts moto's server (S3, DynamoDB and KMS on one
  port) on 127.0.0.1 and a free port, or points at ``EMRFS_ENDPOINT_URL``.
* The pytest plugin (``emrfs.testing.pytest_plugin``, registered through the
  ``pytest11`` entry point) gives session-scoped servers and uuid-named
  buckets per test, and ``emrfs_fault_proxy``.
* :mod:`emrfs.testing.faults` holds :class:`~emrfs.testing.faults.FaultProxy`, a
  proxy that injects eventual consistency, throttling and cut connections.
* :mod:`emrfs.testing.workload` runs a seeded random workload against a model of
  the namespace in every configuration, and shrinks what fails.
"""

from .faults import Failure, FaultKind, FaultPolicy, FaultProxy, Inconsistency, ProxyCounters
from .localserver import LocalServers, endpoint_from_env

__all__ = [
    "LocalServers",
    "endpoint_from_env",
    "FaultProxy",
    "FaultPolicy",
    "Failure",
    "Inconsistency",
    "FaultKind",
    "ProxyCounters",
]
