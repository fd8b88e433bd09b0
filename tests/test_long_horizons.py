"""Long horizons: solves to t = 1e12 stay finite and exact; optional log time."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softmax_diag as sd
from softmax_diag._losses import full_loss, reduced_loss

K = 8
TS = jnp.concatenate([jnp.zeros(1), jnp.logspace(-2, 12, 8)])
TIGHT = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def long_solves():
    problem = sd.UFM(K, K + 1)
    ka, kb, kf = jax.random.split(jax.random.PRNGKey(7), 3)
    sv0 = (jax.random.uniform(ka, (K,), minval=0.2, maxval=1.2),
           jax.random.uniform(kb, (K,), minval=0.2, maxval=1.2))
    params0, basis, frames = sd.hadamard_init(problem, sv0, key=kf)
    full = sd.solve_full(problem, params0, TS, **TIGHT)
    red = sd.solve_reduced(problem, sv0, TS, basis=basis, **TIGHT)
    return problem, sv0, basis, frames, full, red


def test_reduced_reproduces_full_to_1e12(long_solves):
    problem, _, basis, frames, full, red = long_solves
    lifted = jax.vmap(lambda sv: sd.lift(problem, sv, basis, frames))(red.ys)
    for x, y in zip(lifted, full.ys):
        assert bool(jnp.all(jnp.isfinite(y)))
        err = jnp.linalg.norm((x - y).reshape(len(TS), -1), axis=1)
        assert float(jnp.max(err / jnp.linalg.norm(y.reshape(len(TS), -1), axis=1))) <= 1e-10


def test_vanishing_loss_keeps_relative_accuracy(long_solves):
    """At t = 1e12 the loss is ~1e-12: far below 1 - (1 - eps) resolution it must still
    agree between the matrix and the singular-value formulas, with no cancellation."""
    problem, _, basis, _, full, red = long_solves
    red_losses = np.asarray(jax.vmap(lambda sv: reduced_loss(problem, sv, basis))(red.ys))
    full_losses = np.asarray(jax.vmap(lambda p: full_loss(problem, p))(full.ys))
    assert 0 < red_losses[-1] < 1e-9  # the flow really reached tiny losses
    np.testing.assert_allclose(red_losses, full_losses, rtol=1e-8)
    assert np.all(np.diff(red_losses) < 0)


def test_log_time_gives_the_same_solution_in_fewer_steps(long_solves):
    problem, sv0, basis, _, _, red = long_solves
    logt = sd.solve_reduced(problem, sv0, TS, basis=basis, log_time=True, **TIGHT)
    np.testing.assert_array_equal(logt.ts, TS)
    for x, y in zip(logt.ys, red.ys):
        # Two solves at rtol = 1e-12 with different step sequences over 14 decades.
        np.testing.assert_allclose(x, y, rtol=1e-9)
    assert int(logt.stats["num_steps"]) < int(red.stats["num_steps"])


def test_log_time_full_solve_matches(long_solves):
    problem, _, basis, frames, full, _ = long_solves
    params0 = tuple(y[0] for y in full.ys)
    short = TS[:5]
    logt = sd.solve_full(problem, params0, short, log_time=True, **TIGHT)
    for x, y in zip(logt.ys, full.ys):
        # Entry-wise: small entries get an absolute floor at the solve tolerance scale.
        np.testing.assert_allclose(x, y[:5], rtol=1e-9, atol=1e-10)
