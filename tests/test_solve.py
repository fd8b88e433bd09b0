"""solve_full / solve_reduced: reduced == full, scipy reference, invariants, jit/vmap."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import softmax_diag as sd
from softmax_diag._losses import full_loss, reduced_loss

TS = jnp.concatenate([jnp.zeros(1), jnp.logspace(-2, 3, 9)])  # t in [0, 1e3]
TIGHT = dict(rtol=1e-12, atol=1e-12)


def _init(K, width, key, balanced):
    problem = sd.UFM(K, width)
    ka, kb, kf = jax.random.split(key, 3)
    a = jax.random.uniform(ka, (K,), minval=0.2, maxval=1.5)
    b = a if balanced else jax.random.uniform(kb, (K,), minval=0.2, maxval=1.5)
    params0, basis, frames = sd.hadamard_init(problem, (a, b), key=kf)
    return problem, (a, b), params0, basis, frames


def relative_deviation(problem, red, full, basis, frames):
    """max over saved times and layers of ||lift(reduced) - full||_F / ||full||_F."""
    lifted = jax.vmap(lambda sv: sd.lift(problem, sv, basis, frames))(red.ys)
    return max(
        float(jnp.max(
            jnp.linalg.norm((x - y).reshape(len(TS), -1), axis=1)
            / jnp.linalg.norm(y.reshape(len(TS), -1), axis=1)
        ))
        for x, y in zip(lifted, full.ys)
    )


@pytest.fixture(scope="module")
def k16():
    """One shared K = 16 solve pair for the invariant tests."""
    problem, sv0, params0, basis, frames = _init(16, 20, jax.random.PRNGKey(1), False)
    full = sd.solve_full(problem, params0, TS, **TIGHT)
    red = sd.solve_reduced(problem, sv0, TS, basis=basis, **TIGHT)
    return problem, sv0, params0, basis, frames, full, red


@pytest.mark.parametrize("balanced", [True, False], ids=["balanced", "unbalanced"])
@pytest.mark.parametrize("K", [2, 4, 8, 16, 32, 64])
def test_lifted_reduced_reproduces_full(K, balanced):
    """The accuracy bar of DESIGN.md 5: <= 1e-10 relative at rtol = atol = 1e-12."""
    problem, sv0, params0, basis, frames = _init(K, K, jax.random.PRNGKey(K), balanced)
    full = sd.solve_full(problem, params0, TS, **TIGHT)
    red = sd.solve_reduced(problem, sv0, TS, basis=basis, **TIGHT)
    np.testing.assert_array_equal(full.ts, TS)
    np.testing.assert_array_equal(red.ts, TS)
    assert relative_deviation(problem, red, full, basis, frames) <= 1e-10


def test_full_matches_scipy_dop853():
    """Independent NumPy right-hand side integrated by scipy at rtol = atol = 1e-13."""
    K, d, t1 = 4, 5, 50.0
    rng = np.random.default_rng(0)
    w0, h0 = rng.normal(size=(K, d)) * 0.7, rng.normal(size=(d, K)) * 0.7

    def rhs(t, y):
        w, h = y[: K * d].reshape(K, d), y[K * d :].reshape(d, K)
        z = w @ h
        p = np.exp(z - z.max(axis=0))
        p /= p.sum(axis=0)
        g = (p - np.eye(K)) / K
        return np.concatenate([-(g @ h.T).ravel(), -(w.T @ g).ravel()])

    ts = np.linspace(0.0, t1, 6)
    ref = scipy.integrate.solve_ivp(
        rhs, (0.0, t1), np.concatenate([w0.ravel(), h0.ravel()]), method="DOP853",
        t_eval=ts, rtol=1e-13, atol=1e-13,
    )
    assert ref.success
    sol = sd.solve_full(sd.UFM(K, d), (jnp.asarray(w0), jnp.asarray(h0)), ts, **TIGHT)
    ours = np.concatenate([np.asarray(sol.ys[0]).reshape(6, -1),
                           np.asarray(sol.ys[1]).reshape(6, -1)], axis=1)
    # Both methods at ~1e-12..1e-13 local tolerance over 50 time units.
    np.testing.assert_allclose(ours, ref.y.T, rtol=1e-9, atol=1e-10)


def test_full_solution_stays_diagonal(k16):
    """No leakage: Q^T W P and P^T H Q stay diagonal, W and H stay in span(P)."""
    problem, _, _, basis, (frame,), full, _ = k16
    q = basis.matrix
    for i in range(len(TS)):
        w, h = full.ys[0][i], full.ys[1][i]
        scale = float(jnp.max(jnp.abs(w)))
        for m in (q.T @ w @ frame, frame.T @ h @ q):
            off = m - jnp.diag(jnp.diagonal(m))
            assert float(jnp.max(jnp.abs(off))) <= 1e-12 * max(scale, 1.0)
        outside = w - (w @ frame) @ frame.T
        assert float(jnp.max(jnp.abs(outside))) <= 1e-12 * max(scale, 1.0)


def test_invariants_full(k16):
    """W^T W - H H^T conserved; mode 0 frozen; loss non-increasing."""
    problem, sv0, params0, basis, frames, full, _ = k16
    w, h = full.ys
    gram = jnp.einsum("tki,tkj->tij", w, w) - jnp.einsum("tik,tjk->tij", h, h)
    scale = float(jnp.max(jnp.abs(w[-1]))) ** 2
    # Integration error of a conserved quadratic, relative to the size of W^T W.
    assert float(jnp.max(jnp.abs(gram - gram[:1]))) <= 1e-9 * scale
    mode0 = jax.vmap(lambda p: sd.project(problem, p, basis, frames)[0][0])(full.ys)
    np.testing.assert_allclose(mode0, jnp.full(len(TS), sv0[0][0]), rtol=1e-12)
    losses = np.asarray(jax.vmap(lambda p: full_loss(problem, p))(full.ys))
    assert np.all(np.diff(losses) <= 1e-15), losses
    assert losses[-1] < 0.01 * losses[0]


def test_invariants_reduced(k16):
    problem, sv0, _, basis, _, full, red = k16
    a, b = red.ys
    np.testing.assert_allclose(a**2 - b**2, jnp.broadcast_to(sv0[0] ** 2 - sv0[1] ** 2, a.shape),
                               atol=1e-10)
    np.testing.assert_allclose(a[:, 0], sv0[0][0], rtol=1e-13)  # s_0 = 0 for CE
    np.testing.assert_allclose(b[:, 0], sv0[1][0], rtol=1e-13)
    losses = np.asarray(jax.vmap(lambda sv: reduced_loss(problem, sv, basis))(red.ys))
    assert np.all(np.diff(losses) <= 1e-15), losses
    # The loss computed from singular values alone equals the full model's loss.
    full_losses = jax.vmap(lambda p: full_loss(problem, p))(full.ys)
    np.testing.assert_allclose(losses, full_losses, rtol=1e-9)


def test_vmap_equals_loop():
    problem = sd.UFM(8, 8)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    batch = tuple(jax.random.uniform(k, (4, 8), minval=0.2, maxval=1.5) for k in keys[:2])
    solve = lambda sv: sd.solve_reduced(problem, sv, TS, **TIGHT).ys  # noqa: E731
    batched = jax.vmap(solve)(batch)
    for i in range(4):
        single = solve((batch[0][i], batch[1][i]))
        for x, y in zip(batched, single):
            # Batched kernels round differently, which nudges the adaptive step
            # sizes: agreement is to the solver tolerance, not bitwise.
            np.testing.assert_allclose(x[i], y, rtol=1e-10, atol=1e-12)


def test_jit_over_solve_full_matches_eager(k16):
    problem, _, params0, _, _, full, _ = k16
    jitted = jax.jit(lambda p: sd.solve_full(problem, p, TS, **TIGHT).ys)(params0)
    for x, y in zip(jitted, full.ys):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15)


def test_one_compilation_across_times_and_tolerances(monkeypatch):
    """New ts values and tolerances of the same shape reuse the compiled solve."""
    traces = []
    original = diffrax.diffeqsolve

    def counting(*args, **kwargs):
        traces.append(1)  # runs only while tracing
        return original(*args, **kwargs)

    monkeypatch.setattr(diffrax, "diffeqsolve", counting)
    problem = sd.UFM(4, 7)  # a shape no other test uses
    sv0 = (jnp.linspace(0.3, 1.0, 4), jnp.linspace(0.5, 1.1, 4))
    for t1, tol in [(10.0, 1e-10), (20.0, 1e-8), (35.0, 1e-11)]:
        sol = sd.solve_reduced(problem, sv0, jnp.linspace(0.0, t1, 5), rtol=tol, atol=tol)
        assert float(sol.ts[-1]) == t1
    assert len(traces) == 1


def test_max_steps_raises_or_keeps_partial_solution():
    problem = sd.UFM(4, 4)
    sv0 = (jnp.linspace(0.3, 1.0, 4), jnp.linspace(0.5, 1.1, 4))
    ts = jnp.linspace(0.0, 1e3, 5)
    with pytest.raises(RuntimeError, match="max_steps"):
        sd.solve_reduced(problem, sv0, ts, max_steps=3, **TIGHT)
    sol = sd.solve_reduced(problem, sv0, ts, max_steps=3, throw=False, **TIGHT)
    assert sol.result != diffrax.RESULTS.successful
    assert int(sol.stats["num_steps"]) == 3
    assert bool(jnp.all(jnp.isfinite(sol.ys[0][0])))  # t = 0 was saved


def test_progress_meter_runs(capsys):
    problem = sd.UFM(4, 4)
    sv0 = (jnp.linspace(0.3, 1.0, 4), jnp.linspace(0.5, 1.1, 4))
    sol = sd.solve_reduced(problem, sv0, jnp.linspace(0.0, 10.0, 3), progress=True)
    assert sol.result == diffrax.RESULTS.successful
    assert "100" in capsys.readouterr().err  # tqdm writes to stderr
