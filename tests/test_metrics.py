"""`softmax_diag.metrics` on states with known answers, spectral vs matrix versions, and the
Lyapunov candidate along many random trajectories.

Known states: a simplex ETF (every NC metric 0), random matrices (none 0), scaled states
(scale invariance), hand-made off-diagonal perturbations (leakage known in closed form).
Tolerances: metrics of O(1) normalized quantities are exact up to round-off, so
`1e-13` absolute (a few hundred ulps); matrix vs spectral versions agree to `1e-12`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import softmax_diag as sd
from softmax_diag import metrics

ROUND = 1e-13  # absolute tolerance for normalized metrics computed two ways

# Two shared problems (every metric compiles once per problem and shape): Walsh with one
# sample per class at depth 2, Fourier with tied pairs, n = 2 and depth 3. Weight decay
# only enters the loss.
WALSH = sd.UFM(8, 11, weight_decay=0.01)
FOURIER = sd.UFM(6, 6, samples_per_class=2, depth=3, weight_decay=0.01)
PROBLEMS = {"walsh": (WALSH, sd.walsh_basis(8)), "fourier": (FOURIER, sd.fourier_basis(6))}


def tied(basis, vectors):
    if not basis.pairs:
        return tuple(vectors)
    idx = np.asarray(basis.pairs)
    return tuple(v.at[..., idx[:, 1]].set(v[..., idx[:, 0]]) for v in vectors)


def random_spectral(key, problem, basis, low=0.2, high=1.5):
    keys = jax.random.split(key, problem.depth + 1)
    sv = tied(basis, [
        jax.random.uniform(k, (problem.num_classes,), minval=low, maxval=high)
        for k in keys[:-1]
    ])
    params, _, frames = sd.hadamard_init(problem, sv, key=keys[-1], basis=basis)
    return sv, params, frames


def etf_state(key, problem):
    """Neural collapse by construction: class means a rotated simplex ETF plus an offset,
    no within-class spread, classifier rows = centred means (times 2.5) plus a constant row."""
    k, n, width = problem.num_classes, problem.samples_per_class, problem.width
    k1, k2, k3 = jax.random.split(key, 3)
    rotation, _ = jnp.linalg.qr(jax.random.normal(k1, (width, width)))
    simplex = jnp.eye(k) - 1.0 / k  # centred one-hot vectors: Gram = I - 11^T/K
    means = rotation[:, :k] @ simplex  # (d, K), centred
    offset = jax.random.normal(k2, (width,))
    features = jnp.repeat(means + offset[:, None], n, axis=1)  # (d, N)
    classifier = 2.5 * means.T + jax.random.normal(k3, (width,))[None, :]
    if problem.depth == 2:
        return (classifier, features)
    middle, _ = jnp.linalg.qr(jax.random.normal(k3, (width, width)))  # invertible
    return (classifier, 0.7 * middle, middle.T @ features / 0.7)


# --------------------------------------------------------------------------- NC metrics


@pytest.mark.parametrize("name", ["walsh", "fourier"])
def test_nc_is_zero_at_a_simplex_etf(name, getkey):
    problem = PROBLEMS[name][0]
    params = etf_state(getkey(), problem)
    values = metrics.nc(problem, params)
    assert set(metrics.NC_KEYS) <= set(values)
    for key, value in values.items():
        assert abs(float(value)) < ROUND, (key, float(value))


@pytest.mark.parametrize("K", [3, 6])
def test_effective_rank_on_known_logits(K):
    problem = sd.UFM(K, K)
    # Z = I - 11^T/K: K - 1 equal singular values, mode 0 absent.
    np.testing.assert_allclose(
        metrics.effective_rank(problem, (jnp.eye(K) - 1.0 / K, jnp.eye(K))), K - 1, rtol=1e-12
    )
    # Z = diag(1, 0, ..., 0): rank one.
    one = jnp.zeros((K, K)).at[0, 0].set(3.0)
    np.testing.assert_allclose(metrics.effective_rank(problem, (one, jnp.eye(K))), 1.0,
                               rtol=1e-14)


def test_nc_is_not_zero_on_random_matrices(getkey):
    problem = FOURIER
    params = tuple(jax.random.normal(getkey(), s) for s in problem.shapes)
    values = metrics.nc(problem, params)
    for key, value in values.items():
        # Random Gaussian states are O(1) away from collapse in every metric.
        assert float(value) > 1e-2, (key, float(value))


def test_nc1_is_zero_for_one_sample_per_class(getkey):
    problem = WALSH
    params = tuple(jax.random.normal(getkey(), s) for s in problem.shapes)
    assert float(metrics.nc(problem, params)["nc1"]) == 0.0


def test_nc_is_scale_invariant_and_vmappable(getkey):
    problem = FOURIER
    params = tuple(jax.random.normal(getkey(), s) for s in problem.shapes)
    scaled = (3.7 * params[0], 0.02 * params[1], 11.0 * params[2])
    # One vmapped call over the pair == separate calls (and shows nc is vmap-friendly).
    batch = tuple(jnp.stack([p, q]) for p, q in zip(params, scaled))
    both = jax.vmap(lambda p: metrics.nc(problem, p))(batch)
    base = metrics.nc(problem, params)
    for key in base:
        np.testing.assert_allclose(both[key][0], base[key], rtol=1e-13, err_msg=key)
        np.testing.assert_allclose(both[key][1], base[key], rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(
        metrics.lyapunov(problem, (2.0 * jnp.arange(1.0, 7.0), jnp.ones(6), 5 * jnp.ones(6))),
        metrics.lyapunov(problem, (jnp.arange(1.0, 7.0), jnp.ones(6), jnp.ones(6))),
        rtol=1e-13,
    )


# --------------------------------------------------------------------------- spectral == matrix

@pytest.mark.parametrize("name", ["walsh", "fourier"])
def test_spectral_metrics_match_matrix_metrics(name, getkey):
    problem, basis = PROBLEMS[name]
    sv, params, frames = random_spectral(getkey(), problem, basis)

    full, spectral = metrics.nc(problem, params), metrics.spectral_nc(problem, sv)
    for key in metrics.NC_KEYS:
        np.testing.assert_allclose(full[key], spectral[key], rtol=1e-12, atol=ROUND,
                                   err_msg=key)
    np.testing.assert_allclose(
        metrics.loss(problem, params), metrics.spectral_loss(problem, sv, basis), rtol=1e-13
    )
    # Every sample of a spectral state has the same margin.
    np.testing.assert_allclose(
        metrics.margins(problem, params),
        np.full(problem.num_samples, float(metrics.spectral_margin(problem, sv, basis))),
        rtol=1e-12, atol=ROUND,
    )
    assert float(metrics.accuracy(problem, params)) == float(
        metrics.spectral_accuracy(problem, sv, basis)
    )
    np.testing.assert_allclose(
        metrics.effective_rank(problem, params), metrics.spectral_effective_rank(problem, sv),
        rtol=1e-12,
    )
    # Conserved quantities: C_i = P diag(sv[i]^2 - sv[i+1]^2) P^T with the shared frame.
    for frame, c, c_sv in zip(frames, metrics.conserved(problem, params),
                              metrics.spectral_conserved(problem, sv)):
        np.testing.assert_allclose(c, (frame * c_sv[None, :]) @ frame.T, atol=1e-13)
    assert float(metrics.leakage(problem, params, basis, frames)) < 1e-28


def test_spectral_margin_of_equal_modes_is_the_logit_gap():
    """Walsh, equal nontrivial modes z: the logit gap is z (theory page), so the margin is
    z / sqrt(n) when every sample sees z / sqrt(n)."""
    for n in (1, 4):
        problem = sd.UFM(8, 8, samples_per_class=n)
        z = 1.7
        sv = (jnp.full(8, 1.0).at[0].set(0.3), jnp.full(8, z))
        np.testing.assert_allclose(
            metrics.spectral_margin(problem, sv), z / math.sqrt(n), rtol=1e-14
        )


def test_margins_and_accuracy_on_hand_made_logits():
    problem = sd.UFM(3, 3)
    logits = jnp.asarray([[2.0, 0.0, 1.0], [1.0, 3.0, 1.0], [0.5, -1.0, 0.0]])  # column i
    params = (logits, jnp.eye(3))
    # Sample 0 (class 0): 2 - 1 = 1; sample 1: 3 - 0 = 3; sample 2 (class 2): 0 - 1 = -1.
    np.testing.assert_array_equal(metrics.margins(problem, params), [1.0, 3.0, -1.0])
    assert float(metrics.accuracy(problem, params)) == pytest.approx(2 / 3, rel=1e-15)


def test_loss_matches_optax_cross_entropy(getkey):
    problem = WALSH  # weight decay 0.01 on both layers
    params = tuple(jax.random.normal(getkey(), s) for s in problem.shapes)
    logits = (params[0] @ params[1]).T
    labels = jax.nn.one_hot(jnp.arange(8), 8, dtype=logits.dtype)
    reference = jnp.mean(optax.softmax_cross_entropy(logits, labels)) + 0.005 * sum(
        jnp.sum(w**2) for w in params
    )
    np.testing.assert_allclose(metrics.loss(problem, params), reference, rtol=1e-13)


# --------------------------------------------------------------------------- leakage


def test_leakage_of_a_known_perturbation(getkey):
    """W_L = lift + eps * E with E orthogonal to the spectral form: leakage is
    eps^2 |E|^2 / (|sv|^2 + eps^2 |E|^2) exactly (the two parts are orthogonal)."""
    problem, basis = PROBLEMS["fourier"]
    sv, params, frames = random_spectral(getkey(), problem, basis)
    q, p = basis.matrix, frames[0]
    eps = 0.03
    # Off-diagonal unit element Q e_1 e_2^T P^T (|E|_F = 1).
    off = jnp.outer(q[:, 1], p[:, 2])
    energy = sum(float(jnp.sum(v**2)) for v in sv)
    rest = params[1:]
    leak = metrics.leakage(problem, (params[0] + eps * off,) + rest, basis, frames)
    np.testing.assert_allclose(leak, eps**2 / (energy + eps**2), rtol=1e-12)
    # An untied diagonal, Q diag(e_cos - e_sin) P^T (|E|_F^2 = 2), leaks too.
    c, s = basis.pairs[0]
    untie = jnp.outer(q[:, c], p[:, c]) - jnp.outer(q[:, s], p[:, s])
    leak = metrics.leakage(problem, (params[0] + eps * untie,) + rest, basis, frames)
    np.testing.assert_allclose(leak, 2 * eps**2 / (energy + 2 * eps**2), rtol=1e-12)


def test_leakage_of_random_matrices_is_large(getkey):
    problem, basis = PROBLEMS["walsh"]
    params = sd.small_random_init(getkey(), problem, 1.0)
    frames = (sd.random_frame(getkey(), 11, 8),)
    leak = float(metrics.leakage(problem, params, basis, frames))
    # The diagonals keep about K of the K*d (and d*K) entries' energy: leakage ~ 1 - 1/d.
    assert 0.6 < leak < 1.0


# --------------------------------------------------------------------------- invariants


def test_conserved_drift_on_hand_made_trajectories(getkey):
    problem = WALSH
    w, h = (jax.random.normal(getkey(), s) for s in problem.shapes)
    # Step 1 doubles W: C = W^T W - H H^T changes by 3 W^T W.
    trajectory = (jnp.stack([w, 2 * w]), jnp.stack([h, h]))
    expected = float(jnp.linalg.norm(3 * w.T @ w) / (jnp.sum(w**2) + jnp.sum(h**2)))
    np.testing.assert_allclose(metrics.conserved_drift(problem, trajectory), [0.0, expected],
                               rtol=1e-13)
    a, b = jnp.arange(1.0, 9.0), jnp.ones(8)
    sv_trajectory = (jnp.stack([a, 2 * a]), jnp.stack([b, b]))
    expected = float(jnp.linalg.norm(3 * a**2) / (jnp.sum(a**2) + jnp.sum(b**2)))
    np.testing.assert_allclose(metrics.conserved_drift(problem, sv_trajectory),
                               [0.0, expected], rtol=1e-13)


def test_lyapunov_known_values():
    problem = sd.UFM(3, 3)
    # z' = (1, 4): log(AM / GM) = log(2.5 / 2).
    np.testing.assert_allclose(
        metrics.lyapunov(problem, (jnp.asarray([9.0, 1.0, 2.0]), jnp.asarray([0.1, 1.0, 2.0]))),
        math.log(1.25), rtol=1e-14,
    )
    equal = (jnp.asarray([5.0, 3.0, 3.0]), jnp.asarray([1.0, 3.0, 3.0]))
    assert float(metrics.lyapunov(problem, equal)) == 0.0
    # Near equality the value keeps its relative accuracy: V ~ var(log z') / 2.
    tiny = (jnp.ones(3), jnp.asarray([1.0, 1.0, 1.0 + 1e-6]))
    np.testing.assert_allclose(metrics.lyapunov(problem, tiny), 1e-12 / 8, rtol=1e-5)
    assert float(metrics.lyapunov(problem, (jnp.ones(3), jnp.asarray([1.0, 0.0, 1.0])))) == (
        float("inf")
    )
    assert np.isnan(float(metrics.lyapunov(problem, (jnp.ones(3), jnp.asarray([1.0, -1.0, 1.0])))))


# Solver tolerance of the trajectories below; the rise allowed between two save times is
# RISE_TOL: V is a log-sum of the modes with derivative at most 1 in every log z_m, so a
# relative solver error of 1e-11 per mode (a few 1e-10 accumulated) moves V by less.
SOLVER_TOL = 1e-11
RISE_TOL = 1e-9


def _lyapunov_runs(basis, num_starts, key):
    """V along balanced and unbalanced trajectories (one vmapped solve per problem)."""
    K = basis.size
    problem = sd.UFM(K, K)
    ka, kb, kc = jax.random.split(key, 3)
    balanced = jax.random.uniform(ka, (num_starts, K), minval=0.2, maxval=1.2)
    # Unbalanced: layers independent, log-uniform over three decades.
    a = 10.0 ** jax.random.uniform(kb, (num_starts, K), minval=-2.0, maxval=1.0)
    b = 10.0 ** jax.random.uniform(kc, (num_starts, K), minval=-2.0, maxval=1.0)
    starts = tied(basis, (jnp.concatenate([balanced, a]), jnp.concatenate([balanced, b])))
    ts = jnp.concatenate([jnp.zeros(1), jnp.logspace(-3.0, 8.0, 45)])

    @jax.jit
    def run(sv):
        ys = jax.vmap(lambda s: sd.solve_reduced(
            problem, s, ts, basis=basis, rtol=SOLVER_TOL, atol=SOLVER_TOL).ys)(sv)
        v = jax.vmap(jax.vmap(lambda s: metrics.lyapunov(problem, s)))(ys)
        drift = jax.vmap(lambda y: metrics.conserved_drift(problem, y))(ys)
        return v, drift

    v, drift = (np.asarray(x) for x in run(starts))
    return v[:num_starts], v[num_starts:], drift


def test_lyapunov_candidate_along_trajectories(getkey):
    """Decreases along every balanced start; can rise from unbalanced ones (documented).

    One problem here (a compilation costs seconds); docs/diagnostics.md reports the wider
    study (Walsh and Fourier, K from 4 to 32, 3584 starts)."""
    num_starts = 32
    balanced, unbalanced, drift = _lyapunov_runs(sd.walsh_basis(8), num_starts, getkey())
    assert np.all(np.isfinite(balanced)) and np.all(np.isfinite(unbalanced))
    rises = np.max(np.diff(balanced, axis=1), axis=1)
    assert np.all(rises <= RISE_TOL), f"balanced starts where V rose: {np.sum(rises > RISE_TOL)}"
    assert np.all(balanced[:, -1] < 0.9 * balanced[:, 0])
    # Unbalanced starts: V still ends lower on most starts, but it is not monotone on all
    # of them (the measured failure the docstring reports).
    unbalanced_rises = np.max(np.diff(unbalanced, axis=1), axis=1)
    assert np.sum(unbalanced_rises > 1e-6) >= 1
    # ... and the conserved quantities stay conserved along all of these solves.
    assert np.max(drift) < 1e-10  # solver rtol = atol = 1e-11


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused():
    problem = sd.UFM(4, 5)  # shapes only: nothing here compiles
    params = tuple(jnp.zeros(s) for s in problem.shapes)
    with pytest.raises(TypeError, match="problem"):
        metrics.nc("not a problem", params)
    with pytest.raises(ValueError, match="params"):
        metrics.nc(problem, params[:1])
    with pytest.raises(ValueError, match=r"params\[1\]"):
        metrics.loss(problem, (params[0], jnp.zeros((5, 3))))
    with pytest.raises(ValueError, match="sv"):
        metrics.spectral_nc(problem, (jnp.ones(4),))
    with pytest.raises(ValueError, match="spectral_basis"):
        metrics.spectral_loss(problem, (jnp.ones(4), jnp.ones(4)), sd.walsh_basis(8))
    with pytest.raises(ValueError, match="frames"):
        metrics.leakage(problem, params, sd.walsh_basis(4), (jnp.zeros((5, 4)),) * 2)
    with pytest.raises(ValueError, match="trajectory"):
        metrics.conserved_drift(problem, (jnp.zeros((2, 4)), jnp.zeros((2, 5, 4))))
