r"""Hadamard (spectral) initialization: frames, lifting and projecting singular values.

$$W_L = Q \operatorname{diag}(\sigma_L) P_{L-1}^T,\quad
  W_l = P_l \operatorname{diag}(\sigma_l) P_{l-1}^T,\quad
  W_1 = P_1 \operatorname{diag}(\sigma_1) Q_{\mathrm{in}}^T,$$

with $Q$ the class basis, $P_l \in \mathbb{R}^{d \times K}$ orthonormal frames and
$Q_{\mathrm{in}} \in \mathbb{R}^{N \times K}$ the basis repeated over the $n$ samples of
each class, divided by $\sqrt n$ ($Q_{\mathrm{in}} = Q$ for $n = 1$).
`frames = (P_{L-1}, ..., P_1)`, ordered like `params`.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ._bases import check_tied, spectral_basis
from ._checks import as_float_array, check_finite, check_int, check_shape, common_dtype
from ._fields import check_reducible
from ._problem import UFM


def random_frame(key, width: int, rank: int, dtype=None):
    """A `(width, rank)` matrix with orthonormal columns, Haar-distributed.

    QR of a Gaussian matrix with the signs of `R`'s diagonal folded in.

    **Arguments:**

    - `key`: a `jax.random` key.
    - `width`, `rank`: the shape; `rank <= width`.
    - `dtype`: floating dtype (default: JAX's default float, float64 when x64 is on).
    """
    width = check_int("width", width, minimum=1)
    rank = check_int("rank", rank, minimum=1)
    if rank > width:
        raise ValueError(
            f"`rank`={rank} exceeds `width`={width}: at most `width` orthonormal columns "
            "fit; increase width or lower rank."
        )
    dtype = jnp.result_type(float) if dtype is None else dtype
    gauss = jax.random.normal(key, (width, rank), dtype=dtype)
    q, r = jnp.linalg.qr(gauss)
    return q * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(dtype)[None, :]


def check_sv(problem: UFM, sv, name: str = "sv0", *, strict: bool = True,
             hint: str = "one value per class mode") -> tuple:
    """A tuple of `depth` float vectors of length `K`. `strict` also asks for one dtype and
    finite values; without it (the metrics) a NaN state is allowed and gets NaN metrics."""
    if not isinstance(sv, (tuple, list)):
        raise TypeError(
            f"`{name}` must be a tuple of {problem.depth} vectors (one per layer, output "
            f"layer first), got {type(sv).__name__}."
        )
    if len(sv) != problem.depth:
        raise ValueError(
            f"`{name}` has {len(sv)} vectors but depth={problem.depth}; pass one vector "
            "of singular values per layer, ordered like params"
            + ("" if strict else "; for a trajectory, apply the metric with jax.vmap")
            + "."
        )
    out = tuple(as_float_array(f"{name}[{i}]", v) for i, v in enumerate(sv))
    for i, v in enumerate(out):
        check_shape(f"{name}[{i}]", v, (problem.num_classes,), hint)
    return _strict(name, out) if strict else out


def _strict(name: str, arrays: tuple) -> tuple:
    common_dtype(name, arrays)
    return tuple(check_finite(f"{name}[{i}]", a) for i, a in enumerate(arrays))


def check_frames(problem: UFM, frames, dtype=None) -> tuple:
    """`depth - 1` float `(width, K)` frames. With a `dtype` (that of the values they go
    with) also that dtype and orthonormal columns; without (the metrics), shapes only."""
    if not isinstance(frames, (tuple, list)):
        frames = (frames,)
    if len(frames) != problem.depth - 1:
        raise ValueError(
            f"`frames` has {len(frames)} matrices but depth={problem.depth} needs "
            f"{problem.depth - 1}: (P_(L-1), ..., P_1)."
        )
    out = []
    shape = (problem.width, problem.num_classes)
    for i, frame in enumerate(frames):
        frame = as_float_array(f"frames[{i}]", frame)
        check_shape(f"frames[{i}]", frame, shape, "(width, K), orthonormal columns")
        if dtype is None:
            out.append(frame)
            continue
        if frame.dtype != dtype:
            raise TypeError(
                f"`frames[{i}]` has dtype {frame.dtype} but the singular values have "
                f"{dtype}; use one dtype."
            )
        if not isinstance(frame, jax.core.Tracer):
            host = np.asarray(frame, dtype=np.float64)
            gap = np.max(np.abs(host.T @ host - np.eye(shape[1])))
            if not gap <= 1e3 * float(jnp.finfo(dtype).eps):
                raise ValueError(
                    f"`frames[{i}]` does not have orthonormal columns "
                    f"(max |P^T P - I| = {gap:.2e}); build it with "
                    "`softmax_diag.random_frame` or orthonormalise it (QR)."
                )
        out.append(frame)
    return tuple(out)


def _sides(frames):
    """(left, right) frames of each layer; `None` stands for the class basis."""
    lefts = (None,) + tuple(frames)
    rights = tuple(frames) + (None,)
    return lefts, rights


def lift(problem: UFM, sv, basis, frames) -> tuple:
    r"""Singular values -> weight matrices `(W_L, ..., W_1)`.

    $$W_L = Q \operatorname{diag}(\sigma_L) P_{L-1}^T,\quad
      W_l = P_l \operatorname{diag}(\sigma_l) P_{l-1}^T,\quad
      W_1 = P_1 \operatorname{diag}(\sigma_1) Q_{\mathrm{in}}^T,$$

    with $Q$ = `basis`, `frames = (P_{L-1}, ..., P_1)` (orthonormal `(d, K)` columns,
    ordered like `params`) and $Q_{\mathrm{in}}$ the basis repeated over the $n$ samples
    of each class, divided by $\sqrt n$. Fast transforms on the class side:
    $O(d K \log K)$ per layer.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM] (`width >= num_classes`).
    - `sv`: tuple of `depth` vectors of length `K`, output layer first.
    - `basis`: the class basis (tied Fourier pairs must carry equal values).
    - `frames`: tuple of `depth - 1` orthonormal `(width, K)` matrices.

    **Returns:** `(W_L, ..., W_1)`.
    """
    check_reducible(problem, basis)
    sv = check_tied("sv", basis, check_sv(problem, sv, "sv"))
    return lift_unchecked(problem, sv, basis, check_frames(problem, frames, sv[0].dtype))


def lift_unchecked(problem: UFM, sv, basis, frames) -> tuple:
    """`lift` without input checks (the metrics lift states that may be NaN or untied)."""
    n = problem.samples_per_class
    params = []
    for sigma, left, right in zip(sv, *_sides(frames)):
        if left is None:  # W_L = Q diag(sigma) P^T
            params.append(basis.inverse(right * sigma[None, :]).T)
        elif right is None:  # W_1 = P diag(sigma) Q_in^T
            w = basis.inverse(left * sigma[None, :])
            params.append(jnp.repeat(w, n, axis=1) / n**0.5 if n > 1 else w)
        else:
            params.append((left * sigma[None, :]) @ right.T)
    return tuple(params)


def project(problem: UFM, params, basis, frames) -> tuple:
    """Weight matrices -> their diagonals in the basis, $\\operatorname{diag}(P_l^T W_l
    P_{l-1})$ with $Q$ / $Q_{\\mathrm{in}}$ at the ends (inverse of `lift`)."""
    check_reducible(problem, basis)
    params = check_params(problem, params)
    return project_unchecked(problem, params, basis, check_frames(problem, frames, params[0].dtype))


def project_unchecked(problem: UFM, params, basis, frames) -> tuple:
    """`project` without input checks (for the metrics, as `lift_unchecked`)."""
    n = problem.samples_per_class
    sv = []
    for w, left, right in zip(params, *_sides(frames)):
        if left is None:  # diag(Q^T W P)
            sv.append(jnp.sum(basis.transform(w.T).T * right.T, axis=1))
        elif right is None:  # diag(P^T W Q_in)
            if n > 1:
                w = w.reshape(w.shape[0], -1, n).sum(axis=-1) / n**0.5
            sv.append(jnp.sum(left * basis.transform(w), axis=0))
        else:
            sv.append(jnp.sum(left * (w @ right), axis=0))
    return tuple(sv)


def check_params(problem: UFM, params, name: str = "params", *, strict: bool = True,
                 hint: str = "(W_L: (K, d), middle: (d, d), W_1: (d, N))") -> tuple:
    """A tuple of `depth` float matrices of `problem.shapes`; `strict` as in `check_sv`."""
    if not isinstance(params, (tuple, list)) or len(params) != problem.depth:
        raise ValueError(
            f"`{name}` must be a tuple of {problem.depth} matrices (W_L, ..., W_1), got "
            f"{type(params).__name__}"
            + (f" of length {len(params)}" if isinstance(params, (tuple, list)) else "")
            + ("." if strict else "; for a trajectory, apply the metric with jax.vmap.")
        )
    out = tuple(as_float_array(f"{name}[{i}]", w) for i, w in enumerate(params))
    for i, (w, shape) in enumerate(zip(out, problem.shapes)):
        check_shape(f"{name}[{i}]", w, shape, hint)
    return _strict(name, out) if strict else out


def hadamard_init(problem: UFM, sv0, *, key, basis=None):
    """Weight matrices with the given singular values in the class basis and random frames.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM]; needs `width >= num_classes`.
    - `sv0`: tuple of `depth` vectors of length `K` (output layer first).
    - `key`: a `jax.random` key for the frames.
    - `basis`: defaults to `spectral_basis(K)`.

    **Returns:** `(params0, basis, frames)`; `project(problem, params0, basis, frames)`
    gives back `sv0`.
    """
    if basis is None:
        basis = spectral_basis(problem.num_classes)
    check_reducible(problem, basis)
    sv0 = check_tied("sv0", basis, check_sv(problem, sv0, "sv0"))
    keys = jax.random.split(key, problem.depth - 1)
    frames = tuple(
        random_frame(k, problem.width, problem.num_classes, dtype=sv0[0].dtype) for k in keys
    )
    return lift(problem, sv0, basis, frames), basis, frames
