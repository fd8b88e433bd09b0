"""[`load_study`][softmax_diag.load_study] and the [`Study`][softmax_diag.Study] it returns."""

import functools
import os
import warnings

import numpy as np

from ._store import MANIFEST, check_chunk, chunk_paths, chunk_ranges, read_manifest


class Study:
    """A study on disk, as returned by [`load_study`][softmax_diag.load_study] and
    [`run_study`][softmax_diag.run_study].

    **Fields:**

    - `ts`: the `(T,)` save times, `ts[0] = 0`.
    - `sv`: tuple of `depth` arrays `(samples_done, T, K)`, finished samples in sample
        order (read from disk on first access; use `chunks()` for studies larger than
        memory).
    - `sv0`: tuple of `depth` arrays `(samples_done, K)`, the saved values at `t = 0`
        (the initial conditions; for `kind="full"`, their projection, equal to rounding).
    - `indices`: `(samples_done,)` sample index of each row.
    - `num_steps`: `(samples_done,)` solver steps of each sample.
    - `failed`: sample indices whose solve stopped early (their rows hold `inf` after
        the failure).
    - `missing`: number of samples not finished yet (`0` for a complete study).
    - `meta`: dict with `"config"` (everything that determines the results),
        `"devices"` (device count of the latest run), `"versions"`, `"runs"` (one entry
        per run: time, devices, versions), `"num_samples"`, `"done"`, `"missing"`.
    """

    def __init__(self, directory, manifest, chunks):
        self.directory = directory
        self.ts = np.asarray(manifest["ts"], dtype=np.float64)
        self._chunks = chunks  # [(index, start, stop, record)] of finished chunks, in order
        config = manifest["config"]
        latest = manifest["runs"][-1] if manifest.get("runs") else {}
        self.indices = np.concatenate(
            [np.arange(start, stop) for _, start, stop, _ in chunks] or [np.zeros(0, int)]
        )
        self.num_steps = np.concatenate(
            [np.asarray(rec["num_steps"], int) for *_, rec in chunks] or [np.zeros(0, int)]
        )
        self.failed = np.asarray(
            sorted(i for *_, rec in chunks for i in rec.get("failed", [])), dtype=int
        )
        self.missing = config["num_samples"] - len(self.indices)
        self.meta = {
            "config": config,
            "devices": latest.get("devices"),
            "versions": latest.get("versions"),
            "runs": manifest.get("runs", []),
            "num_samples": config["num_samples"],
            "done": len(self.indices),
            "missing": self.missing,
            "failed": self.failed.tolist(),
        }

    def chunks(self):
        """Yields `(indices, sv)` per finished chunk, `sv` a tuple of memory-mapped
        `(chunk, T, K)` arrays: constant memory for studies of any size."""
        for index, start, stop, _ in self._chunks:
            array = np.load(chunk_paths(self.directory, index)[0], mmap_mode="r")
            yield np.arange(start, stop), tuple(array)  # one contiguous block per layer

    @functools.cached_property
    def sv(self) -> tuple:
        depth = self.meta["config"]["problem"]["depth"]
        parts = [sv for _, sv in self.chunks()]
        shape = (0, len(self.ts), self.meta["config"]["problem"]["num_classes"])
        return tuple(
            np.concatenate([p[layer] for p in parts]) if parts else np.zeros(shape)
            for layer in range(depth)
        )

    @functools.cached_property
    def sv0(self) -> tuple:
        return tuple(np.ascontiguousarray(v[:, 0]) for v in self.sv)

    @property
    def complete(self) -> bool:
        return self.missing == 0

    def __repr__(self):
        cfg = self.meta["config"]
        return (
            f"Study({self.directory!r}: {self.meta['done']}/{cfg['num_samples']} samples done"
            f" ({self.missing} missing), kind={cfg['kind']}, K={cfg['problem']['num_classes']},"
            f" T={len(self.ts)}, devices={self.meta['devices']})"
        )


def load_study(directory, *, verify: bool = True) -> Study:
    """Loads the finished samples of a study, complete, still running or killed.

    **Arguments:**

    - `directory`: the study's `DIR` (as given to [`run_study`][softmax_diag.run_study]
        or `softmax-diag study --out DIR`).
    - `verify`: check every chunk's sha256 (reads all data once); with `False`, only
        sizes and array headers are checked.

    **Returns:** a [`Study`][softmax_diag.Study]: `ts`, `sv` (tuple of
    `(samples_done, T, K)` arrays in sample order), `sv0`, `meta` (with `"devices"` and
    `"config"`), `missing`. Warns when samples are missing (unfinished or damaged
    chunks); rerunning the study computes them.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(
            f"`directory` {directory!r} is not a directory; pass the --out DIR of a study."
        )
    manifest = read_manifest(directory)
    if manifest is None:
        raise ValueError(
            f"{directory!r} holds no study ({MANIFEST} is missing); pass the --out DIR of "
            "a study, or run one with softmax_diag.run_study / `softmax-diag study`."
        )
    config = manifest["config"]
    shape = (config["problem"]["depth"], len(manifest["ts"]), config["problem"]["num_classes"])
    chunks = []
    ranges = chunk_ranges(config["num_samples"], config["chunk_size"])
    for index, (start, stop) in enumerate(ranges):
        record = check_chunk(directory, index, start, stop, shape, verify)
        if record is not None:
            chunks.append((index, start, stop, record))
    study = Study(directory, manifest, chunks)
    if study.missing:
        warnings.warn(
            f"study in {directory}: {study.meta['done']} of {config['num_samples']} samples "
            f"done, {study.missing} missing (unfinished or damaged chunks); run the study "
            "again to compute them.",
            stacklevel=2,
        )
    return study
