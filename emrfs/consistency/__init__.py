"""The consistent view: a DynamoDB record of every mutation, checked on reads.

* :mod:`.store` — :class:`Entry`, the :class:`MetadataStore` interface and the
  in-memory store; :mod:`.dynamodb` — the DynamoDB store and table upkeep;
  :mod:`.model` — the row layout.
* :mod:`.policy` — retry policies; :mod:`.checker` — S3-vs-metadata verdicts
  and ``run_with_policy``; :mod:`.sink` — where inconsistencies are reported.
* :mod:`.sync` — diff, sync, import, delete and fsck between bucket and table.
* :mod:`.view` — :class:`ConsistentView`, the async facade the filesystem calls.

``pynamodb`` is needed only by :mod:`.dynamodb` and :mod:`.model`.
"""

from .checker import Verdict, check_listing, check_path, run_with_policy
from .policy import RetryPolicy, create_retry_policy, policy_from_options
from .sink import CallbackSink, CounterSink, InconsistencySink, LoggingSink
from .store import Entry, InMemoryMetadataStore, Listing, MetadataStore
from .view import ConsistentView

__all__ = [
    "ConsistentView",
    "Entry",
    "Listing",
    "MetadataStore",
    "InMemoryMetadataStore",
    "RetryPolicy",
    "create_retry_policy",
    "policy_from_options",
    "Verdict",
    "check_path",
    "check_listing",
    "run_with_policy",
    "InconsistencySink",
    "LoggingSink",
    "CallbackSink",
    "CounterSink",
]
