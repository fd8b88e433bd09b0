r"""`solve_batch`: many initial conditions at once, sharded over every device JAX sees.

Two ways to run a batch, both pure JAX:

- `batching="vmap"` (default): `jax.vmap` of the single solve, one adaptive step size per
  sample. Each sample's steps are exactly those of its own solve, so its result does not
  depend on the batch or the devices (bitwise); the batched `while` loop evaluates every
  branch of the solver for every sample of a piece until the slowest is done.
- `batching="shared"`: one diffrax solve whose state holds a whole piece of the batch.
  The vector field is the single-sample field under `jax.vmap`, and one adaptive step
  size serves the piece. The error norm is the *largest* per-sample RMS norm (not the RMS
  over the batch), so every sample meets the tolerance it would meet alone; samples only
  take more (smaller) steps than they need.

With the default microbatches shared steps were 1.1-1.4x faster on CPU in the last
measurement (`benchmarks/batch_throughput.py`, `docs/studies.md`); vmap is the default
for its bitwise reproducibility (results independent of batch size and device count).

Sharding, padding and microbatches: `_sharded.py`.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._bases import check_tied, spectral_basis
from ._checks import (
    as_float_array,
    check_finite,
    check_int,
    common_dtype,
    is_concrete,
)
from ._fields import FullGradientFlow, ReducedGradientFlow, check_reducible
from ._problem import UFM, check_problem
from ._sharded import CPU_STATE_BYTES, _run
from ._solve import LogTime, check_solve_options

KINDS = ("reduced", "full")
BATCHINGS = ("shared", "vmap")


def solve_batch(
    problem: UFM,
    y0,
    ts,
    *,
    kind: str = "reduced",
    basis=None,
    batching: str = "vmap",
    rtol=1e-10,
    atol=1e-10,
    solver=None,
    max_steps: int = 100_000,
    devices=None,
    microbatch: int | None = None,
    throw: bool = True,
    log_time: bool = False,
) -> diffrax.Solution:
    r"""Solves a batch of initial conditions (leading axis), sharded over the devices.

    The batch axis is split over a 1D mesh of `devices` (default: every device JAX
    sees, `jax.devices()`) with `jax.shard_map`; each device solves its slice on its
    own, `microbatch` samples at a time. Batches that do not divide the device count
    are padded and trimmed.

    Two batching modes, equal to single solves within the tolerance:

    - `"vmap"` (default): `jax.vmap` of the single solve: each sample takes exactly the
        steps of its own solve. The result of a sample does not depend on the batch
        size or the device count, bitwise (it may differ from an unbatched
        `solve_reduced` in the last bits), at the price of the batched `while` loop's
        overhead.
    - `"shared"`: one solve per piece of a device's slice whose state holds the whole
        piece; one adaptive step size for the piece, chosen so that the *largest*
        per-sample error norm meets `rtol`/`atol`.

    Measured on a 2-core CPU at `K = 64`, batch 64 (`benchmarks/batch_throughput.py`):
    vmap 2.9x and shared 4.0x the throughput of one-at-a-time solves on one device,
    4.7x and 5.8x on four simulated devices.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `y0`: the batch of initial conditions, a tuple with a leading batch axis `B` on
        every array: for `kind="reduced"`, `depth` arrays of shape `(B, K)` (singular
        values, output layer first); for `kind="full"`, the weight matrices
        `(W_L, ..., W_1)` with shapes `(B, K, d), ..., (B, d, N)`.
    - `ts`: save times, as for [`solve_reduced`][softmax_diag.solve_reduced] (shared by
        the batch).
    - `kind`: `"reduced"` (singular-value ODE) or `"full"` (weight matrices).
    - `basis`: class basis of the reduced ODE (default `spectral_basis(K)`); unused for
        `kind="full"`.
    - `batching`: `"vmap"` or `"shared"`, see above.
    - `rtol`, `atol`, `solver`, `max_steps`: as for
        [`solve_full`][softmax_diag.solve_full].
    - `devices`: the devices to shard over (default `jax.devices()`).
    - `microbatch`: samples per solve on a device; a device's slice is solved in
        consecutive pieces of (about) this size. Default on CPU: as many samples as
        fit in 32 KiB of state (32 for the reduced ODE at `K = 64`, 1 for the full ODE
        at `K = d = 64`), so that the solver's working set stays in cache; on GPU and
        TPU, the whole slice.
    - `throw`: raise when a solve fails (e.g. hits `max_steps`); with `throw=False`
        the failed samples keep their partial solution and their `result`.
    - `log_time`: integrate in $\tau = \log(1 + t)$, as in
        [`solve_reduced`][softmax_diag.solve_reduced] (fewer steps on long horizons).

    **Returns:** a `diffrax.Solution` laid out like `jax.vmap` of a single solve: every
    leaf has the leading batch axis; `ys` is a tuple of `(B, T, ...)` arrays, `ts` is
    `(B, T)`, `stats["num_steps"]` and `result` are `(B,)` (in shared mode, the
    counts of the piece a sample was solved in).

    **Example:**

    ```python
    problem = softmax_diag.UFM(16, 32)
    a0 = jax.random.uniform(jax.random.key(0), (1000, 16), minval=0.2, maxval=1.2)
    sol = softmax_diag.solve_batch(problem, (a0, a0), jnp.array([0.0, 10.0, 100.0]))
    sol.ys[0].shape  # (1000, 3, 16)
    ```
    """
    problem = check_problem(problem)
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}.")
    if batching not in BATCHINGS:
        raise ValueError(f"`batching` must be one of {BATCHINGS}, got {batching!r}.")
    if kind == "reduced":
        basis = spectral_basis(problem.num_classes) if basis is None else basis
        check_reducible(problem, basis)
        field = ReducedGradientFlow(problem, basis)
        shapes = ((problem.num_classes,),) * problem.depth
        y0 = check_tied("y0", basis, _check_batch(problem, y0, shapes, kind))
    else:
        field = FullGradientFlow(problem)
        y0 = _check_batch(problem, y0, problem.shapes, kind)
    ts, rtol, atol, solver, max_steps = check_solve_options(
        y0[0].dtype, ts, rtol, atol, solver, max_steps, log_time
    )
    devices = _check_devices(devices)
    if microbatch is None and devices[0].platform == "cpu":
        sample_bytes = sum(x[0].size * x.dtype.itemsize for x in y0)
        microbatch = max(1, CPU_STATE_BYTES // sample_bytes)
    else:
        microbatch = check_int("microbatch", microbatch, minimum=1)
    if log_time:
        sol = _run(LogTime(field), y0, jnp.log1p(ts), rtol, atol, solver, max_steps,
                   batching, devices, microbatch)
        sol = eqx.tree_at(lambda s: s.ts, sol, jnp.broadcast_to(ts, sol.ts.shape))
    else:
        sol = _run(
            field, y0, ts, rtol, atol, solver, max_steps, batching, devices, microbatch
        )
    if not throw:
        return sol
    failed = ~(sol.result == diffrax.RESULTS.successful)
    if all(is_concrete(leaf) for leaf in jax.tree.leaves((y0, ts, rtol, atol))):
        failed = np.asarray(failed)
        if failed.any():
            raise RuntimeError(
                f"solve_batch: {int(failed.sum())} of {failed.size} solves stopped early "
                f"(first: sample {int(np.argmax(failed))}) after at most "
                f"{int(np.max(np.asarray(sol.stats['num_steps'])))} steps. Pass a larger "
                f"`max_steps=` (now {max_steps}) or looser rtol/atol; pass `throw=False` "
                "to get the partial solutions with their `result` instead of this error."
            )
        return sol
    ys = eqx.error_if(
        sol.ys, jnp.any(failed),
        "solve_batch: at least one solve stopped early; pass a larger `max_steps=` or "
        "`throw=False`.",
    )
    return eqx.tree_at(lambda s: s.ys, sol, ys)


def _check_batch(problem: UFM, y0, shapes, kind: str) -> tuple:
    what = (
        f"{problem.depth} arrays of shape (B, K) = (B, {problem.num_classes})"
        if kind == "reduced"
        else "the weight matrices (W_L, ..., W_1), each with a leading batch axis"
    )
    if not isinstance(y0, (tuple, list)):
        raise TypeError(
            f"`y0` must be a tuple of {what}, got {type(y0).__name__}."
        )
    if len(y0) != problem.depth:
        raise ValueError(
            f"`y0` has {len(y0)} arrays but depth={problem.depth}; pass {what}."
        )
    out = tuple(as_float_array(f"y0[{i}]", x) for i, x in enumerate(y0))
    for i, (x, shape) in enumerate(zip(out, shapes)):
        if x.shape[1:] != tuple(shape) or x.ndim != len(shape) + 1:
            hint = (
                " For one initial condition use solve_reduced / solve_full, or add a "
                "batch axis with x[None]."
                if x.shape == tuple(shape)
                else ""
            )
            raise ValueError(
                f"`y0[{i}]` has shape {tuple(x.shape)} but kind={kind!r} needs "
                f"(B,) + {tuple(shape)}: {what}.{hint}"
            )
    sizes = {x.shape[0] for x in out}
    if len(sizes) != 1:
        raise ValueError(
            f"the arrays of `y0` have different batch sizes {sorted(sizes)}; give every "
            "layer the same leading batch axis."
        )
    if 0 in sizes:
        raise ValueError("`y0` is an empty batch (B = 0); pass at least one sample.")
    common_dtype("y0", out)
    return tuple(check_finite(f"y0[{i}]", x) for i, x in enumerate(out))


def _check_devices(devices) -> tuple:
    if devices is None:
        return tuple(jax.devices())
    try:
        devices = tuple(devices)
    except TypeError:
        raise TypeError(
            f"`devices` must be a sequence of jax devices (e.g. jax.devices()[:2]), got "
            f"{type(devices).__name__}."
        ) from None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError(
            "`devices` must be a non-empty sequence of jax devices, e.g. jax.devices()[:2]."
        )
    return devices
