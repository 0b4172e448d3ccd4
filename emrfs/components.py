"""The parts of one filesystem instance, wired together from its options.

The filesystem (:mod:`emrfs.filesystem`) keeps the verbs; this module owns which part
is handed which other part.  The few calls that go back up to the filesystem (status,
makedirs, open, rename, its event loop) arrive as a :class:`~emrfs.tier_moves.StackVerbs`,
so nothing here names the filesystem.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cached_io import CachedIO
from .config import Options
from .encrypted_io import EncryptedIO
from .namespace.directories import Directories
from .namespace.listing import Listings
from .namespace.markers import Markers
from .namespace.rename import Renames
from .namespace.tree import Trees
from .namespace.views import Views
from .readplan import ReadPlanner
from .renames import RenameJournal
from .s3.client import S3Client
from .s3.multipart import UploadPurge
from .stacks import Stacks
from .status import StatusFactory
from .tier_moves import StackVerbs
from .tiers import EphemeralRoutes
from .transfers import Transfers
from .transports import Transports


@dataclass(frozen=True)
class Components:
    """Every part of one filesystem, built once by :func:`build`."""

    views: Views  # the consistent view of each path
    s3: S3Client
    status: StatusFactory
    purge: UploadPurge  # abandoned multipart uploads (emrfs.s3.multipart)
    transports: Transports  # the object-store protocol's transport of each path
    encrypted: EncryptedIO  # SSE kwargs, CSE streams
    cached: CachedIO  # the block cache
    reads: ReadPlanner  # statuses and footers reads reuse
    markers: Markers  # markers, parent checks, the S3 side of status
    tiers: EphemeralRoutes  # ephemeral paths
    stacks: Stacks  # the stack of layers in force for each path, one per distinct options
    renames: RenameJournal  # directory renames cut short
    trees: Trees  # a directory's tree, rm and rmdir
    listings: Listings  # ls, find
    moves: Renames  # rename and copy
    transfers: Transfers  # whole-file writes and downloads, write-target checks
    directories: Directories  # mkdir, makedirs


def build(options: Options, verbs: StackVerbs) -> Components:
    """Wire the parts for ``options``; ``verbs`` are the filesystem's own calls that parts
    make back (the lambdas below defer to parts built after the one that holds them)."""
    o = options.s3
    views = Views(options)
    s3 = S3Client(o)
    status = StatusFactory(o.fs_block_size, o.owner, o.group)
    purge = UploadPurge(
        s3,
        age_seconds=o.multipart_purge_age,
        whole_bucket=o.multipart_purge,
        staged_ids=lambda bucket: tiers.staging.staged_upload_ids(bucket),
    )
    transports = Transports(options, s3, purge)
    encrypted = EncryptedIO(options, s3, verbs.info, transports)
    cached = CachedIO(options, encrypted, lambda: stacks, verbs.loop)
    reads = ReadPlanner(
        options,
        lambda: stacks,
        views,
        in_tier=lambda path: tiers.owns(path),
        lookup=verbs.info,
    )
    markers = Markers(s3, transports, options, views, status, encrypted, cached, reads)
    tiers = EphemeralRoutes(options, cached, status, markers, verbs)
    stacks = Stacks(
        options,
        transport=transports.for_options,
        view=views.for_options,
        crypto=lambda cse: encrypted.crypto.narrowed(cse),
        local=lambda: cached.local,
        in_tier=tiers.owns,
    )
    markers.stacks, markers.in_tier, markers.beside = stacks, tiers.owns, tiers.beside
    renames = RenameJournal(markers)
    trees = Trees(markers, tiers, verbs.info, stacks)
    moves = Renames(markers, trees, tiers, renames, verbs.info, stacks)
    return Components(
        views=views,
        s3=s3,
        status=status,
        purge=purge,
        transports=transports,
        encrypted=encrypted,
        cached=cached,
        reads=reads,
        markers=markers,
        tiers=tiers,
        stacks=stacks,
        renames=renames,
        trees=trees,
        listings=Listings(markers, tiers, verbs.info),
        moves=moves,
        transfers=Transfers(options, markers, tiers, stacks, cached, verbs.info, encrypted, moves),
        directories=Directories(markers, tiers, verbs.info),
    )
