"""Atomic file writes and the one JSONL format every stage reads and writes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds.

    A killed or failing writer never leaves a truncated file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically as JSON lines; return the row count."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read JSON lines; a malformed line raises ValueError naming the file and line number."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: malformed JSON line ({exc.msg})") from exc
    return rows


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write one JSON document atomically (indented, keys in insertion order)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def shard_dir_for(out: str | os.PathLike, key: str, create: bool = True) -> Path:
    """The hidden shard directory of ``out`` for cache key ``key``: ``.<name>.shards-<key>``.

    With ``create``, shard directories of ``out`` under any *other* key (shards of an older model,
    prompt set or setting) are removed, and so are temp files a killed writer left in this one:
    a run resumes only from shards that match what it would write now.
    """
    out = Path(out)
    here = out.parent / f".{out.name}.shards-{key}"
    if create:
        for stale in out.parent.glob(f".{out.name}.shards-*"):
            if stale != here and stale.is_dir():
                shutil.rmtree(stale)
        here.mkdir(parents=True, exist_ok=True)
        for tmp in here.glob(".*.tmp"):
            tmp.unlink()
    return here
