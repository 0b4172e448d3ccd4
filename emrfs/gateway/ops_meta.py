"""WebHDFS operations that read metadata: statuses, listings, summaries, block
locations, checksums, defaults."""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import struct
import zlib

from aiohttp import web

from .context import Call, json_response
from .ops_common import file_info, to_fs
from .status import file_status, fs_name_suffix, is_dir, size_of

BYTES_PER_CRC = 512


async def getfilestatus(call: Call) -> web.StreamResponse:
    info = await call.state.backend.info(call.fs_path)
    return json_response({"FileStatus": file_status(info, "", call.state.defaults, user=call.user)})


async def _listing(call: Call) -> list[dict]:
    """Sorted FileStatus entries of a directory, or the file's own status."""
    entries = await call.state.backend.ls(call.fs_path)
    if (
        len(entries) == 1
        and not is_dir(entries[0])
        and to_fs(str(entries[0]["name"])) == call.fs_path
        and call.fs_path
    ):
        return [file_status(entries[0], "", call.state.defaults, user=call.user)]
    out = [
        file_status(e, fs_name_suffix(str(e["name"])), call.state.defaults, user=call.user)
        for e in entries
        if to_fs(str(e["name"])) != call.fs_path
    ]
    out.sort(key=lambda s: s["pathSuffix"])
    return out


async def liststatus(call: Call) -> web.StreamResponse:
    return json_response({"FileStatuses": {"FileStatus": await _listing(call)}})


async def liststatus_batch(call: Call) -> web.StreamResponse:
    """One page of ``list_page_size`` entries after ``startAfter`` (a name, not a path).

    The first page lists the directory; the pages after it are cut from that
    listing while it is fresh (:class:`~.context.ListingSnapshots`).
    """
    start_after = call.params.get("startafter", "")
    key = (call.fs_path, call.user)
    kept = call.state.listings.get(key) if start_after else None
    if kept is None:
        entries = await _listing(call)
        kept = (entries, [e["pathSuffix"] for e in entries])
        call.state.listings.put(key, kept)
    entries, names = kept
    first = bisect.bisect_right(names, start_after) if start_after else 0
    page = entries[first : first + call.state.list_page_size]
    return json_response(
        {
            "DirectoryListing": {
                "partialListing": {"FileStatuses": {"FileStatus": page}},
                "remainingEntries": len(entries) - first - len(page),
            }
        }
    )


async def getcontentsummary(call: Call) -> web.StreamResponse:
    backend = call.state.backend
    info = await backend.info(call.fs_path)
    if is_dir(info):
        found = await backend.call("find", call.fs_path, withdirs=True, detail=True)
        files = [i for n, i in found.items() if not is_dir(i)]
        dirs = [n for n, i in found.items() if is_dir(i) and to_fs(n) != call.fs_path]
        length, file_count, dir_count = sum(size_of(i) for i in files), len(files), len(dirs) + 1
    else:
        length, file_count, dir_count = size_of(info), 1, 0
    return json_response(
        {
            "ContentSummary": {
                "directoryCount": dir_count,
                "fileCount": file_count,
                "length": length,
                "quota": -1,
                "spaceConsumed": length,
                "spaceQuota": -1,
                "typeQuota": {},
            }
        }
    )


async def gethomedirectory(call: Call) -> web.StreamResponse:
    user = call.user or call.state.defaults.owner
    return json_response({"Path": call.state.home_template.format(user=user)})


async def getserverdefaults(call: Call) -> web.StreamResponse:
    d = call.state.defaults
    return json_response(
        {
            "FsServerDefaults": {
                "blockSize": d.block_size,
                "bytesPerChecksum": BYTES_PER_CRC,
                "writePacketSize": 65536,
                "replication": d.replication,
                "fileBufferSize": 4096,
                "encryptDataTransfer": False,
                "trashInterval": 0,
                "checksumType": 1,
                "keyProviderUri": "",
                "defaultStoragePolicyId": 7,
            }
        }
    )


def _blocks(call: Call, info: dict) -> list[tuple[int, int]]:
    offset = call.integer("offset", 0) or 0
    length = call.integer("length", None)
    size = size_of(info)
    end = size if length is None else min(size, offset + length)
    block = int(info.get("blockSize") or call.state.defaults.block_size)
    first = (offset // block) * block
    return [(start, min(block, size - start)) for start in range(first, end, block)]


async def getfileblocklocations(call: Call) -> web.StreamResponse:
    """Blocks of ``blockSize`` over [offset, offset+length), all on this gateway's host."""
    info = await file_info(call)
    host, port = _host_port(call)
    locations = [
        {
            "cachedHosts": [],
            "corrupt": False,
            "hosts": [host],
            "length": length,
            "names": [f"{host}:{port}"],
            "offset": start,
            "storageIds": [],
            "storageTypes": ["DISK"],
            "topologyPaths": [f"/default-rack/{host}:{port}"],
        }
        for start, length in _blocks(call, info)
    ]
    return json_response({"BlockLocations": {"BlockLocation": locations}})


async def get_block_locations(call: Call) -> web.StreamResponse:
    """The older ``LocatedBlocks`` form of the same answer."""
    info = await file_info(call)
    host, port = _host_port(call)
    node = {
        "ipAddr": host,
        "hostName": host,
        "storageID": "emrfs-gateway",
        "xferPort": port,
        "infoPort": port,
        "ipcPort": port,
        "infoSecurePort": 0,
    }
    blocks = [
        {
            "block": {
                "blockPoolId": "emrfs",
                "blockId": index,
                "numBytes": length,
                "generationStamp": 0,
            },
            "locations": [node],
            "cachedLocations": [],
            "storageTypes": ["DISK"],
            "startOffset": start,
            "isCorrupt": False,
        }
        for index, (start, length) in enumerate(_blocks(call, info))
    ]
    return json_response(
        {
            "LocatedBlocks": {
                "fileLength": size_of(info),
                "isUnderConstruction": False,
                "locatedBlocks": blocks,
                "lastLocatedBlock": blocks[-1] if blocks else None,
                "isLastBlockComplete": True,
            }
        }
    )


def _host_port(call: Call) -> tuple[str, int]:
    url = call.request.url
    return url.host or "localhost", url.port or 9870


async def getfilechecksum(call: Call) -> web.StreamResponse:
    """HDFS's ``MD5-of-MD5-of-512CRC32`` over the file (reads it whole), as distcp compares."""
    info = await file_info(call)
    size = size_of(info)
    block = int(info.get("blockSize") or call.state.defaults.block_size)
    block_md5s = []
    for start in range(0, size, block):
        crcs = bytearray()
        end = min(size, start + block)
        for chunk_start in range(start, end, 8 * 1024 * 1024):
            data = await call.state.backend.read(
                call.fs_path, chunk_start, min(end, chunk_start + 8 * 1024 * 1024)
            )
            crcs += await asyncio.to_thread(_crc32s, data)
        # HDFS's MD5-of-MD5-of-CRC32 file checksum (its wire format)
        block_md5s.append(hashlib.md5(crcs).digest())  # noqa: S324
    crc_per_block = block // BYTES_PER_CRC if len(block_md5s) > 1 else 0
    digest = hashlib.md5(b"".join(block_md5s)).digest()  # noqa: S324
    raw = struct.pack(">iq", BYTES_PER_CRC, crc_per_block) + digest
    return json_response(
        {
            "FileChecksum": {
                "algorithm": f"MD5-of-{crc_per_block}MD5-of-{BYTES_PER_CRC}CRC32",
                "bytes": raw.hex(),
                "length": len(raw),
            }
        }
    )


def _crc32s(data: bytes) -> bytes:
    view = memoryview(data)
    return b"".join(
        struct.pack(">I", zlib.crc32(view[i : i + BYTES_PER_CRC]))
        for i in range(0, len(view), BYTES_PER_CRC)
    )
