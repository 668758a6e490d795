"""The reference's probe results, kept on disk once per suite version.

What the reference solution answers to a probe depends only on the reference's
sources, the hidden suite (its tests, helpers and catalogue of wrong versions
decide which probes are asked), the spec and its stand-ins, the grader's probe
code, torch's version and whether the run has the GPU. All of that is hashed
into a content key; the results computed under that key are written to one file
and reused by every later grading process, so a fresh ``grader run`` (or a
Gradescope container) does not compute them again.

Only the trusted side reads or writes the cache; the sandbox never sees its
folder. What is stored is plain data, the values the worker protocol carries
(JSON with numbers, strings, lists, dicts, and numpy arrays as ``.npy`` without
pickle): one zip (an ``.npz`` with a JSON index) per key, ``meta.json``,
``entries.json`` and ``arrays/N.npy``, written to a temporary name and renamed
into place. A file that cannot be read, whose checksum or key does not match, or
whose arrays are not plain numbers is ignored (and replaced by the next save):
its results are computed again, never trusted blindly.

Where: ``$GRADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnn-grader``, else
``~/.cache/cnn-grader``; files live in ``reference-results/`` below it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from grader.spec import AssignmentSpec

FORMAT = 1
SUBFOLDER = "reference-results"
MAX_BYTES = 512 * 1024 * 1024     # a cache file larger than this is not written (nor read)
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".git", ".mypy_cache", ".ruff_cache"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same results give the same bytes

log = logging.getLogger("grader.grading.refcache")


def cache_dir() -> Path:
    """``$GRADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnn-grader``, else ``~/.cache/cnn-grader``."""
    explicit = os.environ.get("GRADER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "cnn-grader"


def _hash_tree(h: "hashlib._Hash", folder: Path, label: str) -> None:
    h.update(f"\0tree {label}\0".encode())
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                       and not SKIP_PARTS.intersection(p.relative_to(folder).parts)
                       and not p.name.endswith((".pyc", ".pyo"))):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())


def _hash_file(h: "hashlib._Hash", path: Path | None, label: str) -> None:
    h.update(f"\0file {label}\0".encode())
    if path is not None and Path(path).is_file():
        h.update(hashlib.sha256(Path(path).read_bytes()).digest())


def probe_code() -> list[tuple[str, Path]]:
    """The grader's code that decides what a reference probe returns: the probe library (the worker
    package, whose probes both sides run), the test-author API that runs them on the reference, the
    reference loader, and this module (the file format). Found without importing them."""
    from importlib.util import find_spec

    def origin(module: str) -> Path:
        spec = find_spec(module)
        if spec is None or spec.origin is None:   # pragma: no cover - part of this package
            raise ImportError(f"cannot find {module}")
        return Path(spec.origin)

    return [("worker", origin("grader.worker").parent), ("testing", origin("grader.testing")),
            ("reference", origin("grader.grading.reference")), ("refcache", Path(__file__))]


def torch_version() -> str:
    """torch's and torchvision's public versions: ``2.14.1`` for ``2.14.1+cu130`` and ``2.14.1+cpu`` alike
    (the reference's probes run on the CPU; the same release computes them the same). torchvision is there
    because a reference may use it (Day 9's draws its feature grids with it)."""
    from importlib import metadata

    versions = []
    for dist in ("torch", "torchvision"):
        try:
            versions.append(metadata.version(dist).split("+", 1)[0])
        except metadata.PackageNotFoundError:
            versions.append("none")
    return " ".join(versions)


def content_key(spec: AssignmentSpec, gpu: bool) -> str:
    """Everything that decides the reference's answers, as one hex digest."""
    h = hashlib.sha256(f"grader reference results, format {FORMAT}".encode())
    _hash_file(h, spec.root / "assignment.toml", "spec")
    _hash_file(h, spec.stand_ins, "stand-ins")
    _hash_tree(h, spec.reference, "reference")
    _hash_tree(h, spec.hidden_tests, "hidden suite")
    for label, path in probe_code():
        if path.is_dir():
            _hash_tree(h, path, label)
        else:
            _hash_file(h, path, label)
    h.update(f"\0torch {torch_version()}\0gpu {bool(gpu)}\0".encode())
    return h.hexdigest()


def _encode(memo: dict[str, Any]) -> tuple[bytes, list[bytes], list[str]]:
    """``entries.json`` and the arrays; values that are not plain data are left out (their names returned)."""
    from grader.worker import protocol

    body: dict[str, Any] = {}
    blobs: list[bytes] = []
    skipped = []
    for key in sorted(memo):
        mine: list[bytes] = []
        try:
            encoded = protocol._encode_value(memo[key], mine)   # noqa: SLF001 - the wire format's own encoder
        except (TypeError, ValueError):
            skipped.append(key)
            continue
        body[key] = _shift(encoded, len(blobs))
        blobs.extend(mine)
    return json.dumps(body, allow_nan=False, separators=(",", ":")).encode(), blobs, skipped


def _shift(value: Any, offset: int) -> Any:
    """Array references renumbered from ``offset`` (each entry is encoded with its own list of arrays)."""
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            return {"__ndarray__": value["__ndarray__"] + offset}
        return {k: _shift(v, offset) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, offset) for v in value]
    return value


def _digest(entries: bytes, blobs: list[bytes]) -> str:
    h = hashlib.sha256(entries)
    for blob in blobs:
        h.update(len(blob).to_bytes(8, "little"))
        h.update(blob)
    return h.hexdigest()


# cache file -> (entries, complete), read by ``preload`` in this process (or the process it was forked from)
_PRELOADED: dict[Path, tuple[dict[str, Any], bool]] = {}


def preload(spec: AssignmentSpec, gpu: bool = False) -> bool:
    """Read the cache file for ``spec`` now, for this process and those it forks; whether it held results."""
    cache = ReferenceCache(spec, gpu=gpu)
    entries = cache.load()
    if entries:
        _PRELOADED[cache.path] = (entries, cache.complete)
    return bool(entries)


class CacheError(Exception):
    """A cache file that cannot be used (its results are computed again)."""


class ReferenceCache:
    """The cache file of one assignment's reference results under one content key."""

    def __init__(self, spec: AssignmentSpec, gpu: bool = False, folder: Path | None = None) -> None:
        self.spec = spec
        self.gpu = bool(gpu)
        self.key = content_key(spec, gpu)
        self.folder = Path(folder) if folder is not None else cache_dir() / SUBFOLDER
        self.path = self.folder / f"{spec.id}-{self.key[:40]}.npz"
        self.saved: set[str] = set()       # memo keys known to be in the file
        self.unsaveable: set[str] = set()  # memo keys whose values are not plain data (never stored)
        self.complete = False              # the file holds everything grading the reference itself asks
        self.problem: str | None = None    # why the file was not used, if it was not

    # ------------------------------------------------------------------ reading
    def load(self) -> dict[str, Any]:
        """The stored results ({memo key: value}); empty when there is no usable file.

        Results this process read already with ``preload`` (a class run's parent, before it forks its
        grading processes) are taken from there: read once, shared by every process forked after.
        """
        if self.path in _PRELOADED:
            entries, complete = _PRELOADED[self.path]
            self.saved, self.complete = set(entries), complete
            return dict(entries)
        try:
            entries, complete = self._read(self.path)
        except FileNotFoundError:
            return {}
        except CacheError as e:
            self.problem = str(e)
            log.warning("reference results in %s not used (computed again): %s", self.path, e)
            return {}
        self.saved = set(entries)
        self.complete = complete
        log.info("reference results: %d loaded from %s", len(entries), self.path)
        return entries

    def _read(self, path: Path) -> tuple[dict[str, Any], bool]:
        from grader.worker import protocol

        try:
            if path.stat().st_size > MAX_BYTES:
                raise CacheError(f"larger than {MAX_BYTES >> 20} MiB")
            with zipfile.ZipFile(path) as zf:
                meta = json.loads(zf.read("meta.json"), parse_constant=protocol._reject_constant)  # noqa: SLF001
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise CacheError("another format")
                if meta.get("key") != self.key:
                    raise CacheError("made for other content (key mismatch)")
                count = meta.get("arrays")
                if type(count) is not int or count < 0:
                    raise CacheError("bad array count")
                entries_raw = zf.read("entries.json")
                blobs = [zf.read(f"arrays/{i}.npy") for i in range(count)]
        except FileNotFoundError:
            raise
        except CacheError:
            raise
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, RecursionError) as e:
            raise CacheError(f"unreadable ({type(e).__name__}: {str(e)[:200]})") from None
        if _digest(entries_raw, blobs) != meta.get("sha256"):
            raise CacheError("checksum mismatch (a damaged or altered file)")
        try:
            body = json.loads(entries_raw, parse_constant=protocol._reject_constant)   # noqa: SLF001
            if not isinstance(body, dict):
                raise CacheError("entries are not a mapping")
            entries = {str(k): protocol._decode_value(v, blobs) for k, v in body.items()}  # noqa: SLF001
        except (ValueError, RecursionError, protocol.ProtocolError) as e:
            raise CacheError(f"entries cannot be read ({str(e)[:200]})") from None
        return entries, bool(meta.get("complete"))

    # ------------------------------------------------------------------ writing
    def save(self, memo: dict[str, Any], complete: bool = False) -> bool:
        """Add what ``memo`` has that the file lacks (merged with what another process saved meanwhile).

        Atomic (a temporary file renamed into place) and serialised between processes by a lock file.
        Returns whether a file was written; a cache that cannot be written is only logged.
        """
        if not (set(memo) - self.saved - self.unsaveable) and (self.complete or not complete):
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f".{self.path.name}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                merged: dict[str, Any] = {}
                on_disk_complete = False
                with contextlib.suppress(FileNotFoundError, CacheError):
                    merged, on_disk_complete = self._read(self.path)
                merged.update({k: v for k, v in memo.items() if k not in merged})
                complete = complete or on_disk_complete
                entries, blobs, skipped = _encode(merged)
                data = self._zip(entries, blobs, complete)
                if len(data) > MAX_BYTES:
                    log.warning("reference results not saved: %d MiB is over the limit", len(data) >> 20)
                    return False
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.folder)
                try:
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
        except OSError as e:
            log.warning("reference results not saved in %s: %s", self.folder, e)
            return False
        self.saved = set(merged) - set(skipped)
        self.unsaveable |= set(skipped)
        self.complete = complete
        self.problem = None
        log.info("reference results: %d saved to %s", len(self.saved), self.path)
        return True

    def _zip(self, entries: bytes, blobs: list[bytes], complete: bool) -> bytes:
        meta = {"format": FORMAT, "key": self.key, "assignment": self.spec.id, "complete": complete,
                "torch": torch_version(), "gpu": self.gpu, "arrays": len(blobs), "sha256": _digest(entries, blobs)}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
            members = [("meta.json", json.dumps(meta, indent=1).encode()), ("entries.json", entries)]
            members += [(f"arrays/{i}.npy", blob) for i, blob in enumerate(blobs)]
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.external_attr = 0o100644 << 16
                zf.writestr(info, data)
        return buffer.getvalue()
