r"""Small random initialization, and the nearest spectral state to any weights.

A generic start is not in the spectral form. To compare its full dynamics with the
reduced ODE, [`spectral_projection`][softmax_diag.spectral_projection] fits frames to the
weights (orthogonal Procrustes) and keeps the diagonals in the class basis; the reduced
ODE then starts from those singular values, and
[`metrics.leakage`][softmax_diag.metrics.leakage] measures what the projection discards.
"""

import jax
import jax.numpy as jnp

from ._bases import spectral_basis
from ._checks import check_int
from ._fields import check_reducible
from ._init import check_params, project
from ._metrics import _tie
from ._problem import UFM, check_problem


def small_random_init(key, problem: UFM, scale: float, dtype=None) -> tuple:
    r"""Weight matrices with i.i.d. Gaussian entries of variance $\mathrm{scale}^2 / d$.

    Every layer, `(K, d)`, `(d, d)` or `(d, N)`, gets entries
    $\mathcal N(0, \mathrm{scale}^2/d)$, so its singular values lie within about
    $\mathrm{scale}\,(1 \pm \sqrt{\min/d})$ of `scale` (Marchenko-Pastur): a small
    `scale` starts near the saddle at 0, the "rich" regime.

    **Arguments:**

    - `key`: a `jax.random` key.
    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `scale`: positive standard deviation times $\sqrt d$.
    - `dtype`: floating dtype (default: JAX's default float, float64 with x64 on).

    **Returns:** `(W_L, ..., W_1)`.
    """
    problem = check_problem(problem)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise TypeError(f"`scale` must be a positive number, got {scale!r}.") from None
    if not (float(scale) > 0 and float(scale) < float("inf")):
        raise ValueError(f"`scale` must be a positive finite number, got {scale!r}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    keys = jax.random.split(key, problem.depth)
    std = float(scale) / problem.width**0.5
    return tuple(
        std * jax.random.normal(k, shape, dtype=dtype) for k, shape in zip(keys, problem.shapes)
    )


def _polar(a):
    """Orthonormal factor U V^T of a (d, K) matrix: the closest matrix with orthonormal
    columns, and the maximizer of trace(P^T a) over them (orthogonal Procrustes)."""
    u, _, vt = jnp.linalg.svd(a, full_matrices=False)
    return u @ vt


def spectral_projection(problem: UFM, params, *, basis=None, sweeps: int = 3):
    r"""The spectral state nearest to `params`: fitted frames and the diagonals in the basis.

    Frames by orthogonal Procrustes, $P_l = \operatorname{polar}(W_l P_{l-1} + W_{l+1}^T
    P_{l+1})$ (with $P_0 = Q_{\mathrm{in}}$, $P_L = Q$), which maximizes
    $\operatorname{tr} P_l^T(\dots)$, the sum of the diagonals the two neighbouring layers
    show in the frame. Started bottom-up from $P_l = \operatorname{polar}(W_l P_{l-1})$ and
    refined by `sweeps` Gauss-Seidel sweeps (at depth 2 one fit is exact:
    $P = \operatorname{polar}(W^T Q + H Q_{\mathrm{in}})$). Then
    $\sigma_l = \operatorname{diag}(P_l^T W_l P_{l-1})$, tied Fourier pairs averaged.

    On a spectral state with positive singular values this recovers its frames and
    singular values exactly. On a generic state,
    `metrics.leakage(problem, params, basis, frames)` is the fraction of energy dropped.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM] (`width >= num_classes`).
    - `params`: `(W_L, ..., W_1)`.
    - `basis`: default `spectral_basis(K)`.
    - `sweeps`: refinement sweeps for depth >= 3.

    **Returns:** `(sv, basis, frames)`, like [`hadamard_init`][softmax_diag.hadamard_init]:
    `solve_reduced(problem, sv, ts, basis=basis)` is the reduced ODE from the projection.
    """
    basis = spectral_basis(problem.num_classes) if basis is None else basis
    check_reducible(problem, basis)
    params = check_params(problem, params)
    sweeps = check_int("sweeps", sweeps, minimum=0)
    n = problem.samples_per_class
    w_in = params[-1]
    if n > 1:  # W_1 Q_in = (class sums of W_1 / sqrt n) Q
        w_in = w_in.reshape(w_in.shape[0], -1, n).sum(axis=-1) / n**0.5
    bottom = basis.transform(w_in)  # W_1 Q_in, (d, K)
    top = basis.transform(params[0].T)  # W_L^T Q, (d, K)
    # frames[i] sits between params[i] (above) and params[i + 1] (below).
    depth = problem.depth
    if depth == 2:
        frames = [_polar(bottom + top)]
    else:
        frames = [None] * (depth - 1)
        frames[-1] = _polar(bottom)
        for i in range(depth - 3, -1, -1):  # bottom-up start: W_l P_{l-1} only
            frames[i] = _polar(params[i + 1] @ frames[i + 1])
        for _ in range(sweeps):
            for i in range(depth - 2, -1, -1):
                from_below = bottom if i == depth - 2 else params[i + 1] @ frames[i + 1]
                from_above = top if i == 0 else params[i].T @ frames[i - 1]
                frames[i] = _polar(from_below + from_above)
    frames = tuple(frames)
    sv = _tie(basis, project(problem, params, basis, frames))
    return sv, basis, frames
