"""Seeded generation of operation sequences that collide often."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .model import Model
from .ops import PATHS, READ_PATHS, MiB, Op, _parent

_WEIGHTS: dict[str, int] = {
    "mkdir": 8,
    "pipe": 14,
    "pipe_create": 5,
    "write_multipart": 1,
    "open_create": 3,
    "cat": 8,
    "cat_range": 6,
    "get_file": 4,
    "mv": 14,
    "cp": 5,
    "rm": 6,
    "rm_r": 5,
    "rmdir": 5,
    "ls": 8,
    "find": 5,
    "info": 5,
    "exists": 3,
}


def generate(seed: int, n_ops: int) -> list[Op]:
    """``n_ops`` operations drawn from ``seed``; the same seed gives the same list.

    A model runs alongside so that most operations name something that exists
    (an existing file to read or move, an existing directory to move into) while
    the rest name anything in :data:`PATHS`, which gives the collisions.
    """
    rng = random.Random(seed)
    model = Model()
    names, weights = zip(*_WEIGHTS.items(), strict=True)
    ops: list[Op] = []

    def pick(kind: str | None, universe: Sequence[str] = PATHS) -> str:
        pool = sorted(model.files) if kind == "file" else sorted(model.dirs) if kind else []
        if pool and rng.random() < 0.6:
            return rng.choice(pool)
        return rng.choice(universe)

    for _ in range(n_ops):
        name = rng.choices(names, weights)[0]
        if name in ("pipe", "pipe_create", "open_create"):
            path = pick("file" if rng.random() < 0.4 else None)
            op = Op(name, path, size=rng.choice((0, 1, 7, 100, 300)), fill=rng.randrange(1 << 30))
        elif name == "write_multipart":  # above the 5 MiB part size: two parts
            op = Op(
                name, pick(None), size=5 * MiB + rng.randrange(1, 4096), fill=rng.randrange(1 << 30)
            )
        elif name in ("mv", "cp"):
            src = pick("file" if rng.random() < 0.6 else "dir")
            if rng.random() < 0.15:  # into its own directory, or onto itself
                dst = _parent(src) or src
            else:
                dst = pick("dir" if rng.random() < 0.4 else None)
            op = Op(name, src, dst)
        elif name == "cat_range":
            op = Op(
                name,
                pick("file"),
                start=rng.choice((None, 0, 1, 5, 50, 400, -3)),
                end=rng.choice((None, 2, 10, 120, 1000, -1)),
            )
        elif name in ("cat", "get_file"):
            op = Op(name, pick("file"))
        elif name in ("rm", "rm_r", "rmdir"):
            op = Op(name, pick("dir" if rng.random() < 0.5 else "file"))
        elif name == "find":
            op = Op(name, pick("dir", READ_PATHS), flag=rng.random() < 0.5)
        elif name in ("ls", "info", "exists"):
            op = Op(name, pick("dir" if rng.random() < 0.5 else "file", READ_PATHS))
        else:  # mkdir
            op = Op(name, pick(None))
        model.apply(op)
        ops.append(op)
    return ops
