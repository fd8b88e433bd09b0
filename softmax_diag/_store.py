"""The on-disk format of a study: manifest, chunk files and their commit records, lock.

```text
DIR/manifest.json        config, save times, versions and device counts of every run
DIR/chunks/000003.npy    float64 (depth, samples, T, K): singular values at every saved time
DIR/chunks/000003.json   commit record: sample range, sha256 and size of the .npy, steps
DIR/.lock                held (flock) by the process that is writing
```

A chunk counts as finished only when its record exists and the `.npy` has the recorded
size and sha256. Both files are written to a temporary name, flushed, fsynced and renamed
(the `.npy` first), so a crash leaves either a finished chunk, or files that fail the
check and are recomputed.
"""

import contextlib
import datetime
import functools
import hashlib
import io
import json
import os
import platform
import re
import warnings

import jax
import numpy as np

FORMAT = "softmax_diag.study/1"
MANIFEST = "manifest.json"
CHUNKS = "chunks"
_CHUNK = re.compile(r"^(\d{6})\.(npy|json)$")
_TMP = re.compile(r"^\d{6}\.(npy|json)\.tmp-\d+$")


def atomic_write(path: str, data: bytes) -> None:
    """Writes `data` to `path` via a temporary file: write, flush, fsync, rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_dir(path: str) -> None:
    """Makes renames inside `path` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def chunk_paths(directory: str, index: int) -> tuple[str, str]:
    base = os.path.join(directory, CHUNKS, f"{index:06d}")
    return base + ".npy", base + ".json"


def read_manifest(directory: str) -> dict | None:
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{path} is not a readable study manifest ({err}); pass overwrite=True "
            "(--overwrite) to start the study over."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a softmax_diag study manifest (format "
            f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, "
            f"expected {FORMAT!r}); use another directory, or overwrite=True "
            "(--overwrite) to replace it."
        )
    return manifest


def write_manifest(directory: str, manifest: dict) -> None:
    atomic_write(
        os.path.join(directory, MANIFEST), json.dumps(manifest, indent=2).encode()
    )
    fsync_dir(directory)


def write_chunk(directory: str, index: int, array: np.ndarray, record: dict) -> None:
    """Writes one finished chunk: the `.npy` (atomically), then its commit record."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float64))
    data = buffer.getvalue()
    npy, rec = chunk_paths(directory, index)
    atomic_write(npy, data)
    record = dict(record, index=index, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    atomic_write(rec, json.dumps(record).encode())
    fsync_dir(os.path.dirname(npy))


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(functools.partial(fh.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_chunk(directory: str, index: int, start: int, stop: int, shape, verify=True):
    """The commit record of a finished, intact chunk, or `None` (missing or damaged)."""
    npy, rec = chunk_paths(directory, index)
    try:
        with open(rec) as fh:
            record = json.load(fh)
        if (record.get("index"), record.get("start"), record.get("stop")) != (index, start, stop):
            return None
        if os.path.getsize(npy) != record["bytes"]:
            return None
        if verify and _sha256(npy) != record["sha256"]:
            return None
        array = np.load(npy, mmap_mode="r")
        depth, *rest = shape
        if array.shape != (depth, stop - start, *rest) or array.dtype != np.float64:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record


def remove_chunk(directory: str, index: int) -> None:
    for path in chunk_paths(directory, index):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def clean_temporaries(directory: str) -> None:
    folder = os.path.join(directory, CHUNKS)
    for name in os.listdir(folder):
        if _TMP.match(name):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))


def clear_study(directory: str) -> None:
    """Deletes the files a study owns (manifest, chunk files) and nothing else."""
    folder = os.path.join(directory, CHUNKS)
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if _CHUNK.match(name) or _TMP.match(name):
                os.remove(os.path.join(folder, name))
        with contextlib.suppress(OSError):  # left in place if it holds foreign files
            os.rmdir(folder)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(directory, MANIFEST))


@contextlib.contextmanager
def study_lock(directory: str):
    """An exclusive `flock` on `DIR/.lock`: one writer per study (released on any exit)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, still correct for a single writer
        yield
        return
    path = os.path.join(directory, ".lock")
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise ValueError(
                f"another process (pid {fh.read().strip() or '?'}) is writing the study in "
                f"{directory}; wait for it to finish, or stop it, before running again."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def chunk_ranges(num_samples: int, chunk_size: int) -> list[tuple[int, int]]:
    return [
        (start, min(start + chunk_size, num_samples))
        for start in range(0, num_samples, chunk_size)
    ]


def _differences(stored: dict, new: dict, prefix="") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(new)):
        a, b = stored.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} on disk, {b!r} now")
    return out


def _run_record(devices) -> dict:
    import softmax_diag

    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "devices": len(devices),
        "platform": devices[0].platform,
        "versions": {
            "softmax_diag": softmax_diag.__version__, "jax": jax.__version__,
            "python": platform.python_version(), "numpy": np.__version__,
        },
    }


def prepare_directory(directory: str, config: dict, ts, overwrite: bool, devices) -> None:
    """Creates or checks `DIR` and its manifest (caller holds the lock)."""
    manifest = read_manifest(directory) if not overwrite else None
    chunk_dir = os.path.join(directory, CHUNKS)
    if overwrite:
        clear_study(directory)
    elif manifest is not None:
        diff = _differences(manifest["config"], config)
        if diff:
            raise ValueError(
                f"{directory} holds a study with a different configuration ("
                + "; ".join(diff)
                + "). Rerun with the stored options to resume it, choose another output "
                "directory, or pass overwrite=True (--overwrite) to delete its results "
                "and start over."
            )
        versions = manifest["runs"][-1]["versions"] if manifest.get("runs") else {}
        if versions.get("jax") not in (None, jax.__version__):
            warnings.warn(
                f"the study in {directory} was started with JAX {versions['jax']}, this is "
                f"JAX {jax.__version__}: new chunks may differ from old ones in the last bits.",
                stacklevel=3,
            )
    elif os.path.isdir(chunk_dir) and os.listdir(chunk_dir):
        raise ValueError(
            f"{chunk_dir} exists but {directory} has no study manifest; choose another "
            "output directory, or pass overwrite=True (--overwrite) to replace it."
        )
    if manifest is None:
        manifest = {
            "format": FORMAT,
            "config": config,
            "ts": [float(t) for t in ts],
            "layout": {
                "chunk": "chunks/{index:06d}.npy, float64 (depth, samples, T, K), "
                "samples [index * chunk_size, (index + 1) * chunk_size)",
                "record": "chunks/{index:06d}.json: start, stop, sha256, bytes, "
                "num_steps, failed",
            },
            "runs": [],
        }
    manifest["runs"].append(_run_record(devices))
    os.makedirs(chunk_dir, exist_ok=True)
    write_manifest(directory, manifest)
    clean_temporaries(directory)
