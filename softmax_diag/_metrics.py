r"""Diagnostics of a UFM state: loss, margins, neural-collapse metrics, structure, invariants.

Every function is pure JAX on one state (use `jax.vmap` over a trajectory). Matrix
versions take `params = (W_L, ..., W_1)`; `spectral_*` versions take singular values
`sv = (σ_L, ..., σ_1)` of a Hadamard (spectral) state and cost $O(K)$ or $O(K \log K)$.
On a lifted state, `spectral_f(problem, sv) == f(problem, lift(problem, sv, basis, frames))`
up to round-off.

Notation: features $F = W_{L-1} \cdots W_1 \in \mathbb{R}^{d \times N}$ (the input of the
last layer), classifier $W = W_L \in \mathbb{R}^{K \times d}$, class means
$\mu_c = \frac1n \sum_{i \in c} F_{:,i}$, global mean $\mu_G = \frac1K \sum_c \mu_c$,
centred class means $\tilde M = [\mu_c - \mu_G]_c \in \mathbb{R}^{d \times K}$, centred
classifier $\tilde W = (I - \frac1K \mathbf 1 \mathbf 1^T) W$ (rows minus their mean), and
$E = I - \frac1K \mathbf 1 \mathbf 1^T$, the Gram matrix of a simplex ETF. In the spectral
form, $\sigma'$ is $\sigma$ with mode 0 (the constant column) set to 0; centring removes
exactly that mode.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ._bases import check_basis, spectral_basis
from ._init import check_frames, check_params, check_sv, lift_unchecked, project_unchecked
from ._losses import full_loss, product, reduced_loss
from ._problem import UFM, check_problem

NC_KEYS = (
    "nc1",
    "etf_error",
    "etf_error_classifier",
    "etf_error_logits",
    "self_duality",
    "equinorm",
    "equinorm_classifier",
)


# --------------------------------------------------------------------------- checks




def _params(problem: UFM, params, name: str = "params") -> tuple:
    """Shapes only (values may be traced, and a NaN state gets NaN metrics)."""
    return check_params(problem, params, name, strict=False,
                        hint="use jax.vmap for a leading time/batch axis")


def _sv(problem: UFM, sv, name: str = "sv") -> tuple:
    return check_sv(problem, sv, name, strict=False, hint="use jax.vmap for a batch axis")


def _basis(problem: UFM, basis):
    if basis is None:
        return spectral_basis(problem.num_classes)
    return check_basis(basis, problem.num_classes)


# --------------------------------------------------------------------------- loss, margins


@eqx.filter_jit
def loss(problem: UFM, params):
    r"""The training loss $\mathcal L = \frac1N \sum_i \ell(Z_{:,i}, y_i)
    + \sum_l \frac{\lambda_l}{2} \lVert W_l \rVert_F^2$ of [`UFM`][softmax_diag.UFM].

    Computed with the package's accurate per-sample losses (relative accuracy as the loss
    goes to 0).

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `params`: `(W_L, ..., W_1)`.

    **Returns:** a scalar.
    """
    problem = check_problem(problem)
    return full_loss(problem, _params(problem, params))


@eqx.filter_jit
def spectral_loss(problem: UFM, sv, basis=None):
    r"""The same loss from singular values: every sample sees the logits
    $\varphi = \operatorname{column}(z / \sqrt n)$, $z = \prod_l \sigma_l$, so
    $\mathcal L = \ell(\varphi, 0) + \sum_l \frac{\lambda_l}{2} \lVert \sigma_l \rVert^2$.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `sv`: `(σ_L, ..., σ_1)`, vectors of length `K` (tied Fourier pairs equal).
    - `basis`: default `spectral_basis(K)`.

    **Returns:** a scalar, equal to [`loss`][softmax_diag.metrics.loss] of the lifted state.
    """
    problem = check_problem(problem)
    return reduced_loss(problem, _sv(problem, sv), _basis(problem, basis))


def _logits(params):
    return product(params)


def _margin(logits, labels, axis):
    at_label = jnp.sum(jnp.where(labels, logits, 0.0), axis=axis)
    others = jnp.max(jnp.where(labels, -jnp.inf, logits), axis=axis)
    return at_label - others


@eqx.filter_jit
def margins(problem: UFM, params):
    r"""Per-sample margins $m_i = Z_{y_i, i} - \max_{x \ne y_i} Z_{x, i}$.

    Positive means correctly classified with room to spare; the margin is invariant to
    adding a constant to all logits of a sample.

    **Arguments:** `problem`, `params` as in [`loss`][softmax_diag.metrics.loss].

    **Returns:** an `(N,)` array, samples in order (sample `i` has class `i // n`).
    """
    problem = check_problem(problem)
    logits = _logits(_params(problem, params))
    classes = jnp.arange(problem.num_samples) // problem.samples_per_class
    labels = jnp.arange(problem.num_classes)[:, None] == classes[None, :]
    return _margin(logits, labels, axis=0)


@eqx.filter_jit
def spectral_margin(problem: UFM, sv, basis=None):
    r"""The margin shared by every sample of a spectral state:
    $\varphi_0 - \max_{x \ne 0} \varphi_x$ with $\varphi = \operatorname{column}(z/\sqrt n)$.

    (All samples see a permutation of $\varphi$, so they have the same margin.) For
    Walsh, equal nontrivial modes $z_m = z$ give margin $z$ (the logit gap).

    **Returns:** a scalar, equal to every entry of
    [`margins`][softmax_diag.metrics.margins] of the lifted state.
    """
    problem = check_problem(problem)
    basis = _basis(problem, basis)
    phi = basis.column(product(_sv(problem, sv)) / problem.samples_per_class**0.5)
    return _margin(phi, jnp.arange(problem.num_classes) == 0, axis=-1)


@eqx.filter_jit
def accuracy(problem: UFM, params):
    r"""Training accuracy $\frac1N \#\{i : m_i > 0\}$ (ties count as errors).

    **Returns:** a scalar in $[0, 1]$.
    """
    m = margins(problem, params)
    return jnp.mean((m > 0).astype(m.dtype))


@eqx.filter_jit
def spectral_accuracy(problem: UFM, sv, basis=None):
    """Accuracy of a spectral state: 1 if the common margin is positive, else 0."""
    m = spectral_margin(problem, sv, basis)
    return (m > 0).astype(m.dtype)


# --------------------------------------------------------------------------- neural collapse


def _etf_distance(gram):
    k = gram.shape[0]
    etf = jnp.eye(k, dtype=gram.dtype) - 1.0 / k
    return jnp.linalg.norm(gram / jnp.linalg.norm(gram) - etf / math.sqrt(k - 1))


def _cv(x):
    return jnp.std(x) / jnp.mean(x)


@eqx.filter_jit
def nc(problem: UFM, params) -> dict:
    r"""Neural-collapse metrics, each scale-invariant and exactly 0 at neural collapse.

    With the notation of the module (features $F$, class means $\mu_c$, centred means
    $\tilde M$, centred classifier $\tilde W$, ETF Gram $E = I - \frac1K \mathbf 1\mathbf 1^T$,
    $\lVert\cdot\rVert$ the Frobenius norm):

    - `"nc1"`: within-class variability relative to between-class variability,
      $\operatorname{tr}\Sigma_W / \operatorname{tr}\Sigma_B$ with
      $\operatorname{tr}\Sigma_W = \frac1N \sum_i \lVert F_{:,i} - \mu_{y_i} \rVert^2$ and
      $\operatorname{tr}\Sigma_B = \frac1K \sum_c \lVert \mu_c - \mu_G \rVert^2$
      (0 whenever $n = 1$).
    - `"etf_error"`: $\lVert G/\lVert G\rVert - E/\lVert E\rVert \rVert$ with
      $G = \tilde M^T \tilde M$: distance of the normalized, centred class means from a
      simplex ETF (any rotation, any scale).
    - `"etf_error_classifier"`: the same with $G = \tilde W \tilde W^T$.
    - `"etf_error_logits"`: the same with $G = \bar Z^T \bar Z$, $\bar Z = \tilde W \tilde M$
      the doubly centred class-mean logits (centring over classes removes the per-sample
      constant that cross-entropy ignores).
    - `"self_duality"`: $\lVert \tilde W^T / \lVert \tilde W \rVert - \tilde M / \lVert \tilde
      M \rVert \rVert$, classifier rows vs centred class means (Papyan et al.'s NC3).
    - `"equinorm"`: coefficient of variation $\operatorname{std}_c / \operatorname{mean}_c$
      of $\lVert \mu_c - \mu_G \rVert$.
    - `"equinorm_classifier"`: the same for the rows of $\tilde W$.

    Reference: Papyan, Han and Donoho, *Prevalence of neural collapse during the terminal
    phase of deep learning training*, PNAS 2020 (NC1 here uses traces instead of
    $\operatorname{tr}(\Sigma_W \Sigma_B^\dagger)$, so no pseudo-inverse is needed).

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `params`: `(W_L, ..., W_1)`.

    **Returns:** a dict of scalars with the keys above (NaN when a normalizing quantity
    is 0, e.g. all features equal).
    """
    problem = check_problem(problem)
    params = _params(problem, params)
    k, n = problem.num_classes, problem.samples_per_class
    classifier, features = params[0], product(params[1:])
    means = features.reshape(features.shape[0], k, n).mean(axis=-1)  # (d, K)
    within = features - jnp.repeat(means, n, axis=1)
    centred = means - jnp.mean(means, axis=1)[:, None]
    w_c = classifier - jnp.mean(classifier, axis=0)[None, :]
    logits_c = w_c @ centred
    return {
        "nc1": (jnp.sum(within**2) / problem.num_samples) / (jnp.sum(centred**2) / k),
        "etf_error": _etf_distance(centred.T @ centred),
        "etf_error_classifier": _etf_distance(w_c @ w_c.T),
        "etf_error_logits": _etf_distance(logits_c.T @ logits_c),
        "self_duality": jnp.linalg.norm(
            w_c.T / jnp.linalg.norm(w_c) - centred / jnp.linalg.norm(centred)
        ),
        "equinorm": _cv(jnp.linalg.norm(centred, axis=0)),
        "equinorm_classifier": _cv(jnp.linalg.norm(w_c, axis=1)),
    }


def _spectral_etf(v):
    """ETF distance of the Gram matrix Q diag(v'^2) Q^T: a vector computation."""
    u = v[1:] ** 2
    return jnp.linalg.norm(u / jnp.linalg.norm(u) - 1.0 / math.sqrt(v.shape[0] - 1))


@eqx.filter_jit
def spectral_nc(problem: UFM, sv) -> dict:
    r"""[`nc`][softmax_diag.metrics.nc] from singular values alone, $O(K)$.

    On a spectral state the features are $F = P_{L-1} \operatorname{diag}(f) Q_{\mathrm{in}}^T$
    with $f = \sigma_{L-1} \cdots \sigma_1$, the classifier is
    $W = Q \operatorname{diag}(a) P_{L-1}^T$ with $a = \sigma_L$, and centring zeroes mode 0.
    Every Gram matrix is $Q \operatorname{diag}(v'^2) Q^T$ and $E = Q \operatorname{diag}(0,
    1, \dots, 1) Q^T$, so with $u = (v_1^2, \dots, v_{K-1}^2)$:

    - `"nc1"` $= 0$ (the $n$ samples of a class share one feature);
    - `"etf_error"` $= \lVert u / \lVert u \rVert - \mathbf 1 / \sqrt{K - 1} \rVert$ with
      $v = f$; `"etf_error_classifier"` with $v = a$; `"etf_error_logits"` with $v = z$;
    - `"self_duality"` $= \lVert a' / \lVert a' \rVert - f' / \lVert f' \rVert \rVert$;
    - `"equinorm"` $=$ `"equinorm_classifier"` $= 0$: a group-circulant Gram matrix has a
      constant diagonal, so all class means (and classifier rows) have the same norm.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `sv`: `(σ_L, ..., σ_1)` (any basis: the formulas only use orthonormality and the
      constant mode 0).

    **Returns:** a dict with the same keys as [`nc`][softmax_diag.metrics.nc].
    """
    problem = check_problem(problem)
    sv = _sv(problem, sv)
    a, f = sv[0], product(sv[1:])
    a_c, f_c = a[1:], f[1:]
    zero = jnp.zeros((), a.dtype)
    return {
        "nc1": zero,
        "etf_error": _spectral_etf(f),
        "etf_error_classifier": _spectral_etf(a),
        "etf_error_logits": _spectral_etf(a * f),
        "self_duality": jnp.linalg.norm(
            a_c / jnp.linalg.norm(a_c) - f_c / jnp.linalg.norm(f_c)
        ),
        "equinorm": zero,
        "equinorm_classifier": zero,
    }


def _entropy_rank(s):
    p = s / jnp.sum(s)
    plogp = jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)
    return jnp.exp(-jnp.sum(plogp))


@eqx.filter_jit
def effective_rank(problem: UFM, params):
    r"""Effective rank of the logits $Z$ (Roy and Vetterli, 2007):
    $\exp\big(-\sum_i p_i \log p_i\big)$, $p_i = s_i / \sum_j s_j$, $s$ the singular values
    of $Z$.

    Between 1 and $\operatorname{rank} Z$; equal to $r$ when $Z$ has $r$ equal nonzero
    singular values (so $K - 1$ at neural collapse with mode 0 at zero, $K$ when all
    modes are equal).

    **Returns:** a scalar (NaN for $Z = 0$).
    """
    problem = check_problem(problem)
    s = jnp.linalg.svd(_logits(_params(problem, params)), compute_uv=False)
    return _entropy_rank(s)


@eqx.filter_jit
def spectral_effective_rank(problem: UFM, sv):
    r"""[`effective_rank`][softmax_diag.metrics.effective_rank] from singular values:
    the logits $Q \operatorname{diag}(z) Q_{\mathrm{in}}^T$ have singular values $|z|$."""
    problem = check_problem(problem)
    return _entropy_rank(jnp.abs(product(_sv(problem, sv))))


# --------------------------------------------------------------------------- structure


def _tie(basis, sv):
    """Orthogonal projection onto tied pairs: each pair replaced by its mean."""
    if not basis.pairs:
        return sv
    idx = jnp.asarray(basis.pairs)
    out = []
    for v in sv:
        mean = 0.5 * (v[idx[:, 0]] + v[idx[:, 1]])
        out.append(v.at[idx[:, 0]].set(mean).at[idx[:, 1]].set(mean))
    return tuple(out)


@eqx.filter_jit
def leakage(problem: UFM, params, basis, frames):
    r"""Relative energy of `params` outside the spectral form with this basis and frames.

    $$\mathrm{leakage} = \frac{\sum_l \lVert W_l - \Pi(W_l) \rVert_F^2}
      {\sum_l \lVert W_l \rVert_F^2},$$

    where $\Pi$ keeps the diagonal of each layer in its basis,
    $\Pi(W_l) = P_l \operatorname{diag}(\operatorname{diag}(P_l^T W_l P_{l-1})) P_{l-1}^T$
    ($Q$ and $Q_{\mathrm{in}}$ at the ends), with tied Fourier pairs averaged: $\Pi$ is the
    orthogonal projection onto the states the reduced ODE describes, so leakage is the
    off-diagonal energy (plus, for Fourier, the untied part of each pair). In $[0, 1]$;
    0 exactly on `lift(problem, sv, basis, frames)`. The residual is formed directly (not
    as $1 - \lVert\Pi\rVert^2/\lVert W\rVert^2$), so tiny leakages are resolved.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM] (`width >= num_classes`).
    - `params`: `(W_L, ..., W_1)`.
    - `basis`: the class basis of the spectral form.
    - `frames`: `(P_{L-1}, ..., P_1)`, as returned by
      [`hadamard_init`][softmax_diag.hadamard_init].

    **Returns:** a scalar.
    """
    problem = check_problem(problem)
    params = _params(problem, params)
    basis = _basis(problem, basis)
    frames = check_frames(problem, frames)
    sv = _tie(basis, project_unchecked(problem, params, basis, frames))
    diagonal = lift_unchecked(problem, sv, basis, frames)
    off = sum(jnp.sum((w - p) ** 2) for w, p in zip(params, diagonal))
    return off / sum(jnp.sum(w**2) for w in params)


# --------------------------------------------------------------------------- invariants


@eqx.filter_jit
def conserved(problem: UFM, params) -> tuple:
    r"""The quantities gradient flow conserves without weight decay,
    $C_l = W_{l+1}^T W_{l+1} - W_l W_l^T$, as a tuple of `depth - 1` `(d, d)` matrices,
    ordered like `params`: `params[i].T @ params[i] - params[i+1] @ params[i+1].T`.

    With one weight decay $\lambda$ on every layer they decay as $e^{-2\lambda t}$.
    Discrete optimizers conserve them only up to $O(\mathrm{lr}^2)$ per step.
    """
    problem = check_problem(problem)
    params = _params(problem, params)
    return tuple(top.T @ top - low @ low.T for top, low in zip(params[:-1], params[1:]))


@eqx.filter_jit
def spectral_conserved(problem: UFM, sv) -> tuple:
    r"""[`conserved`][softmax_diag.metrics.conserved] on a spectral state: per mode
    $\sigma_{l+1}^2 - \sigma_l^2$ (`sv[i]**2 - sv[i+1]**2`), since
    $C_l = P_l \operatorname{diag}(\sigma_{l+1}^2 - \sigma_l^2) P_l^T$."""
    problem = check_problem(problem)
    sv = _sv(problem, sv)
    return tuple(top**2 - low**2 for top, low in zip(sv[:-1], sv[1:]))


@eqx.filter_jit
def conserved_drift(problem: UFM, trajectory):
    r"""Drift of the conserved quantities along a trajectory, relative to the weight scale:

    $$\delta(t) = \frac{\big(\sum_l \lVert C_l(t) - C_l(0) \rVert_F^2\big)^{1/2}}
      {\sum_l \lVert W_l(0) \rVert_F^2} .$$

    Works on matrices or on singular values (the two give the same numbers on lifted
    trajectories, as $\lVert P \operatorname{diag}(v) P^T \rVert_F = \lVert v \rVert$).

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `trajectory`: a tuple shaped like `params` or like `sv` with a leading time axis,
      time 0 first (for example `sol.ys`, or the output of
      [`train_full`][softmax_diag.train_full]).

    **Returns:** a `(T,)` array, 0 at time 0.
    """
    problem = check_problem(problem)
    if not isinstance(trajectory, (tuple, list)) or len(trajectory) != problem.depth:
        raise ValueError(
            f"`trajectory` must be a tuple of depth={problem.depth} arrays with a leading "
            "time axis (like sol.ys)."
        )
    leaves = tuple(jnp.asarray(x) for x in trajectory)
    if all(x.ndim == 2 for x in leaves):
        fn = spectral_conserved
    elif all(x.ndim == 3 for x in leaves):
        fn = conserved
    else:
        raise ValueError(
            "`trajectory` must hold matrices (ndim 3: time, rows, cols) or singular values "
            f"(ndim 2: time, K), got ndims {[x.ndim for x in leaves]}."
        )
    first = tuple(x[0] for x in leaves)
    c0 = fn(problem, first)
    scale = sum(jnp.sum(x**2) for x in first)

    def one(state):
        c = fn(problem, state)
        return jnp.sqrt(sum(jnp.sum((ci - c0i) ** 2) for ci, c0i in zip(c, c0))) / scale

    return jax.vmap(one)(leaves)


@eqx.filter_jit
def lyapunov(problem: UFM, sv):
    r"""A Lyapunov **candidate** for the two-layer cross-entropy flow: the Kullback-Leibler
    divergence of the uniform distribution from the normalized nontrivial logit modes,

    $$V = \mathrm{KL}\Big(u \,\Big\Vert\, \frac{z'}{\sum_m z'_m}\Big)
      = \log \Big(\frac{1}{K-1} \sum_{m \ge 1} z_m\Big) - \frac{1}{K-1} \sum_{m \ge 1} \log z_m
      \;\ge 0,$$

    with $z = \prod_l \sigma_l$ and $z' = (z_1, \dots, z_{K-1})$: the log of the ratio of
    the arithmetic to the geometric mean. Scale-invariant, 0 exactly when all nontrivial
    modes are equal (reduced neural collapse), defined when every $z_m > 0$ for $m \ge 1$
    ($+\infty$ if one is 0, NaN if one is negative). Computed as
    $\log\!\big(1 + \overline{e^x - 1 - x} + \bar x\big) - \bar x$, $x = \log z' - c$, so
    values near 0 keep their relative accuracy.

    **A candidate, not a theorem.** Measured (the Diagnostics page of the docs): it
    decreased along all 2048 *balanced* ($a = b$) two-layer CE trajectories tried (Walsh
    $K = 4$ to $32$, Fourier $K = 5$ to $12$, modes over 3.5 decades, up to $t = 10^8$) and
    512 with $a = 3b$, but it rose, transiently ($t \le 6.4 \cdot 10^3$), on 269 of 1024
    *unbalanced* starts, where the conserved $a_m^2 - b_m^2$ makes modes grow at unequal
    relative speeds, and on nearly every start at depth 3 or 4.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM] (the claim concerns `loss="ce"`, depth 2,
      no weight decay).
    - `sv`: `(σ_L, ..., σ_1)`.

    **Returns:** a scalar.
    """
    problem = check_problem(problem)
    z = product(_sv(problem, sv))[1:]
    logs = jnp.log(jnp.where(z > 0, z, 1.0))
    x = logs - jnp.mean(logs)
    mean_x = jnp.mean(x)
    value = jnp.log1p(jnp.mean(jnp.expm1(x) - x) + mean_x) - mean_x
    return jnp.where(jnp.any(z < 0), jnp.nan, jnp.where(jnp.any(z == 0), jnp.inf, value))
