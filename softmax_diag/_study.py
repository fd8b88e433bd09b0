r"""[`run_study`][softmax_diag.run_study]: many initializations solved chunk by chunk to disk.

Chunk `c` holds samples `[c * chunk_size, (c + 1) * chunk_size)`, each drawn from
`(seed, index)` alone (`_study_init.py`); `_store.py` describes the files and how a chunk
is committed; `_study_load.py` reads them back.
"""

import json
import math
import os
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ._bases import WalshBasis, spectral_basis
from ._batch import BATCHINGS, KINDS, _check_devices, solve_batch
from ._checks import check_int, check_tolerances
from ._fields import check_reducible
from ._init import lift, project
from ._problem import UFM, check_problem
from ._store import (
    check_chunk,
    chunk_ranges,
    prepare_directory,
    remove_chunk,
    study_lock,
    write_chunk,
)
from ._study_init import INITS, initial_conditions, save_times
from ._study_load import load_study


def _basis_name(basis) -> str:
    return "walsh" if isinstance(basis, WalshBasis) else "fourier"


def _config(problem, basis, **options) -> dict:
    config = {
        "problem": {
            "num_classes": problem.num_classes, "width": problem.width,
            "depth": problem.depth, "loss": problem.loss,
            "label_smoothing": problem.label_smoothing,
            "weight_decay": list(problem.weight_decay),
            "samples_per_class": problem.samples_per_class,
        },
        "basis": _basis_name(basis),
        "solver": "Dopri8",
        **options,
    }
    return json.loads(json.dumps(config))  # what the manifest will hold


def run_study(
    directory,
    problem: UFM,
    *,
    num_samples: int,
    chunk_size: int = 64,
    t1: float = 1e3,
    points: int = 16,
    t_min: float = 1e-2,
    seed: int = 0,
    kind: str = "reduced",
    basis=None,
    init: str = "uniform",
    batching: str = "vmap",
    rtol: float = 1e-10,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    log_time: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    devices=None,
):
    r"""Solves `num_samples` initializations chunk by chunk into `directory`, resumably.

    Sample `i` starts from [`initial_conditions`][softmax_diag.initial_conditions]
    `(problem, [i], seed=seed, init=init)`; chunk `c` (samples
    `[c * chunk_size, (c + 1) * chunk_size)`) is one
    [`solve_batch`][softmax_diag.solve_batch] call, sharded over `devices`, and is
    written atomically with a checksum. Running again with the same arguments skips the
    finished chunks and recomputes missing or damaged ones; different arguments are
    refused unless `overwrite=True`. For `kind="full"` the weight matrices are built
    with `lift` from the sample's singular values and frames (drawn from the same
    per-sample key), solved with the full ODE, and stored as their singular values
    `project(problem, params(t), basis, frames)`: the same `(T, K)` per layer as the
    reduced ODE, so both kinds can be compared directly.

    **Arguments:**

    - `directory`: output folder (created if needed).
    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `num_samples`, `chunk_size`: samples in the study and per chunk (file); a
        multiple of the device count uses every device fully.
    - `t1`, `points`, `t_min`: save times `0` and `points` log-spaced times from `t_min`
        to `t1`.
    - `seed`, `init`: initial conditions, see `initial_conditions`.
    - `kind`, `basis`, `batching`, `rtol`, `atol`, `max_steps`, `log_time`, `devices`:
        as for [`solve_batch`][softmax_diag.solve_batch].
    - `overwrite`: delete the study in `directory` (its manifest and chunk files only)
        and start over.
    - `progress`: show a tqdm bar with samples done, total and time left.

    **Returns:** the [`Study`][softmax_diag.Study], as
    [`load_study`][softmax_diag.load_study] gives it.
    """
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(
            f"`directory` {directory!r} is a file; pass a directory path for the study "
            "(it is created if missing)."
        )
    problem = check_problem(problem)
    basis = spectral_basis(problem.num_classes) if basis is None else basis
    check_reducible(problem, basis)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    points = check_int("points", points, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"`seed` must be below 2**32, got {seed}.")
    max_steps = check_int("max_steps", max_steps, minimum=1)
    for name, value in (("t1", t1), ("t_min", t_min), ("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise ValueError(f"`{name}` must be a positive number, got {value!r}.")
    if points > 1 and not t_min < t1:
        raise ValueError(
            f"`t_min` ({t_min}) must be below `t1` ({t1}) for log-spaced save times; "
            "lower t_min or use points=1."
        )
    for name, value, allowed in (("kind", kind, KINDS), ("batching", batching, BATCHINGS),
                                 ("init", init, tuple(INITS))):
        if value not in allowed:
            raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")
    if not isinstance(log_time, bool):
        raise TypeError(f"`log_time` must be True or False, got {log_time!r}.")
    check_tolerances(rtol, atol, jnp.result_type(float))  # float64 on? (before any file)
    devices = _check_devices(devices)
    ts = save_times(float(t1), points, float(t_min))
    config = _config(
        problem, basis, kind=kind, batching=batching, init=init, seed=seed,
        num_samples=num_samples, chunk_size=chunk_size, t1=float(t1), points=points,
        t_min=float(t_min), rtol=float(rtol), atol=float(atol), max_steps=max_steps,
        log_time=log_time,
    )
    os.makedirs(directory, exist_ok=True)
    with study_lock(directory):
        prepare_directory(directory, config, ts, overwrite, devices)
        _compute(directory, problem, basis, config, ts, devices, progress)
    return load_study(directory)


def _compute(directory, problem, basis, config, ts, devices, progress):
    from tqdm.auto import tqdm

    shape = (problem.depth, len(ts), problem.num_classes)
    ranges = chunk_ranges(config["num_samples"], config["chunk_size"])
    todo = []
    for index, (start, stop) in enumerate(ranges):
        if check_chunk(directory, index, start, stop, shape) is None:
            remove_chunk(directory, index)  # damaged or partial: recomputed below
            todo.append(index)
    done = config["num_samples"] - sum(ranges[i][1] - ranges[i][0] for i in todo)
    solve = _chunk_solver(problem, basis, config, ts, devices)
    with tqdm(total=config["num_samples"], initial=done, unit="sample", desc="study",
              disable=not progress, dynamic_ncols=True) as bar:
        for index in todo:
            start, stop = ranges[index]
            began = time.perf_counter()
            sv, steps, failed = solve(start, stop)
            write_chunk(directory, index, sv, {
                "start": start, "stop": stop, "num_steps": steps.tolist(),
                "failed": [start + int(i) for i in np.flatnonzero(failed)],
                "seconds": round(time.perf_counter() - began, 6), "devices": len(devices),
            })
            bar.update(stop - start)


def _chunk_solver(problem, basis, config, ts, devices):
    """`solve(start, stop) -> (sv (depth, B, T, K), num_steps (B,), failed (B,))`.

    Every chunk is solved at the full `chunk_size` (the last one padded with copies of
    its last sample): one compilation for the whole study.
    """
    size = config["chunk_size"]
    ts = jnp.asarray(ts)
    options = dict(
        basis=basis, batching=config["batching"], rtol=config["rtol"], atol=config["atol"],
        max_steps=config["max_steps"], log_time=config["log_time"], devices=devices,
        throw=False,
    )
    lift_all = jax.jit(jax.vmap(lambda sv, frames: lift(problem, sv, basis, frames)))
    project_all = jax.jit(jax.vmap(jax.vmap(
        lambda params, frames: project(problem, params, basis, frames), in_axes=(0, None)
    )))

    def solve(start, stop):
        indices = np.minimum(np.arange(start, start + size), stop - 1)
        drawn = initial_conditions(
            problem, indices, seed=config["seed"], init=config["init"], basis=basis,
            frames=config["kind"] == "full",
        )
        if config["kind"] == "reduced":
            sv0 = drawn
            sol = solve_batch(problem, sv0, ts, kind="reduced", **options)
            ys = sol.ys
        else:
            sv0, frames = drawn
            params0 = lift_all(sv0, frames)
            sol = solve_batch(problem, params0, ts, kind="full", **options)
            ys = project_all(sol.ys, frames)
        count = stop - start
        sv = np.stack([np.asarray(y)[:count] for y in ys])
        steps = np.asarray(sol.stats["num_steps"])[:count]
        failed = ~np.asarray(sol.result == diffrax.RESULTS.successful)[:count]
        return sv, steps, failed

    return solve
