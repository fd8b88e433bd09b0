r"""Initial conditions and save times of a study, drawn per sample from `(seed, index)`.

Sample `i` of a study with seed `s` uses only `jax.random.fold_in(PRNGKey(s), i)`, so any
subset of samples can be (re)computed in any order, in any chunking, on any number of
devices, and gets the same values.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._bases import spectral_basis
from ._checks import check_int
from ._fields import check_reducible
from ._init import random_frame
from ._problem import UFM, check_problem

INITS = {
    "uniform": "every layer and mode i.i.d. Uniform[0.2, 1.2]",
    "balanced": "one Uniform[0.2, 1.2] vector per sample shared by all layers",
    "small": "every layer and mode i.i.d. Uniform[0.01, 0.1] (small initialization)",
}


def save_times(t1: float, points: int, t_min: float = 1e-2) -> np.ndarray:
    """`t = 0` followed by `points` log-spaced times from `t_min` to `t1` (just `t1`
    when `points == 1`)."""
    if points == 1:
        return np.array([0.0, t1])
    ts = np.logspace(math.log10(t_min), math.log10(t1), points)
    ts[0], ts[-1] = t_min, t1  # exact ends (logspace rounds 10 ** log10(t1))
    return np.concatenate([[0.0], ts])


def initial_conditions(problem: UFM, indices, *, seed: int, init: str = "uniform",
                       basis=None, frames: bool = False):
    """The initial singular values (and frames) of study samples `indices`.

    Sample `i` uses only `jax.random.fold_in(jax.random.PRNGKey(seed), i)`: the values
    do not depend on which other samples are drawn with it. Distributions (`init`):
    `"uniform"`: every layer and mode i.i.d. Uniform[0.2, 1.2]; `"balanced"`: one
    Uniform[0.2, 1.2] vector shared by all layers; `"small"`: i.i.d. Uniform[0.01, 0.1].
    For the Fourier basis the sine column of each tied pair copies the cosine value.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `indices`: 1D integer array of sample indices.
    - `seed`: the study seed.
    - `init`: `"uniform"`, `"balanced"` or `"small"`.
    - `basis`: the class basis (default `spectral_basis(K)`).
    - `frames`: also return the frames `(P_{L-1}, ..., P_1)`, each `(B, width, K)`,
        drawn with `random_frame` from the same per-sample key.

    **Returns:** the tuple of `depth` arrays `(B, K)`, or `(sv0, frames)`.
    """
    if init not in INITS:
        raise ValueError(f"`init` must be one of {tuple(INITS)}, got {init!r}.")
    problem = check_problem(problem)
    basis = spectral_basis(problem.num_classes) if basis is None else basis
    check_reducible(problem, basis)
    seed = check_int("seed", seed, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"`seed` must be below 2**32, got {seed}.")
    indices = np.asarray(indices)
    if (indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer)
            or np.any(indices < 0) or np.any(indices >= 2**32)):
        raise ValueError(
            f"`indices` must be a 1D array of sample indices in [0, 2**32), got {indices!r}."
        )
    sv, fr = _draw(problem, basis, init, bool(frames), jnp.asarray(seed, jnp.uint32),
                   jnp.asarray(indices, jnp.uint32))
    return (sv, fr) if frames else sv


@eqx.filter_jit
def _draw(problem, basis, init, with_frames, seed, indices):
    low, high = (0.01, 0.1) if init == "small" else (0.2, 1.2)
    k, depth = problem.num_classes, problem.depth
    dtype = jnp.result_type(float)

    def one(index):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        key_sv, key_frames = jax.random.split(key)
        keys = jax.random.split(key_sv, depth)
        draws = 1 if init == "balanced" else depth
        sv = [jax.random.uniform(keys[i], (k,), dtype, low, high) for i in range(draws)]
        sv = sv * depth if init == "balanced" else sv
        if basis.pairs:
            idx = np.asarray(basis.pairs)
            sv = [v.at[idx[:, 1]].set(v[idx[:, 0]]) for v in sv]
        frames = tuple(
            random_frame(kf, problem.width, k, dtype=dtype)
            for kf in jax.random.split(key_frames, depth - 1)
        ) if with_frames else None
        return tuple(sv), frames

    return jax.vmap(one)(indices)
