"""Where Hadoop's FileOutputCommitter puts things, as pure path logic (no I/O).

The committer (algorithm 1, Spark's default) lays out a job's output ``OUT`` as::

    OUT/_temporary/<app attempt>/_temporary/<task attempt>/<rel>   a task writing
    OUT/_temporary/<app attempt>/<task>/<rel>                       a committed task
    OUT/<rel>                                                       after job commit

Task commit is one directory rename from the first form to the second; job
commit renames each committed task's files (or whole subdirectories) into
``OUT``.  :func:`is_task_commit` recognises the first rename and
:func:`job_output_path` predicts where the second puts a file, so a task
commit can stage each file's upload at the key the job commit will want.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["PENDING", "is_task_commit", "in_task_attempt", "job_output_path"]

#: the committer's name for its pending directories.
PENDING = "_temporary"


def _split(path: str) -> list[str]:
    return [p for p in path.strip("/").split("/") if p]


def is_task_commit(src: str, dst: str) -> bool:
    """True when ``src -> dst`` is a task commit:
    ``J/_temporary/ATTEMPT -> J/TASK`` where ``J`` is ``OUT/_temporary/N``."""
    s, d = _split(src), _split(dst)
    if len(s) < 5 or len(d) != len(s) - 1:
        return False
    job = s[:-2]
    return (
        s[-2] == PENDING
        and d[:-1] == job
        and d[-1] != PENDING
        and job[-2] == PENDING
        and len(job) >= 3
    )


def in_task_attempt(path: str) -> bool:
    """True for ``OUT/_temporary/N/_temporary`` and everything below it: where tasks
    write before their commit (so nothing there is ever staged)."""
    parts = _split(path)
    return any(parts[i] == PENDING and parts[i + 2] == PENDING for i in range(len(parts) - 2))


def job_output_path(
    path: str, is_ephemeral_segment: Callable[[str], bool] | None = None
) -> str | None:
    """Where job commit will put the committed task file at ``path``, or None.

    ``OUT/_temporary/N/TASK/rel`` becomes ``OUT/rel`` (the last such pattern
    in the path wins, so nested committers resolve to the innermost output).
    With ``is_ephemeral_segment``, segments it accepts are dropped from the
    result too: Spark's ``.spark-staging-*`` directories are renamed onto the
    table after the job commit (dynamic partition overwrite).
    """
    parts = _split(path)
    for i in range(len(parts) - 4, 0, -1):
        if parts[i] == PENDING and parts[i + 2] != PENDING:
            out = parts[:i] + parts[i + 3 :]
            if is_ephemeral_segment is not None:
                out = [p for p in out if not is_ephemeral_segment(p)]
            return "/".join(out) if len(out) > 1 else None
    return None
