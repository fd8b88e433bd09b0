"""`_solve._UNROLLED`: diffrax's Runge-Kutta methods with unrolled stages.

The unrolled step re-implements diffrax's generic explicit RK step, so it is compared with
that step itself on the same step grid (values, dense output, gradients), through the public
solve against a tight reference, and across a jump in the vector field against a closed
form. If a new diffrax changes the step's contract, these tests fail first.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softmax_diag as sd
from softmax_diag._solve import _UNROLLED

pytestmark = pytest.mark.skipif(
    not _UNROLLED, reason="this diffrax release is not in _solve._DIFFRAX_CHECKED: stock solvers"
)

K = 8
TS = jnp.linspace(0.0, 50.0, 6)
TOLS = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(scope="module")
def problem_and_sv():
    problem = sd.UFM(K, K)
    ka, kb = jax.random.split(jax.random.key(3))
    sv = (jax.random.uniform(ka, (K,), minval=0.2, maxval=1.5),
          jax.random.uniform(kb, (K,), minval=0.2, maxval=1.5))
    return problem, sv


def _solve(problem, sv, solver, saveat, dt0):
    """diffrax itself (no `_integrate`, so no swap), with constant steps `dt0`."""
    field = sd.ReducedGradientFlow(problem, sd.walsh_basis(K))
    return diffrax.diffeqsolve(diffrax.ODETerm(field), solver, TS[0], TS[-1], dt0, sv,
                               saveat=saveat, max_steps=10_000)


@pytest.mark.parametrize("method", sorted(_UNROLLED, key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_unrolled_step_is_diffrax_step(problem_and_sv, method):
    """On the same step grid (constant steps), values and the dense interpolant agree with
    diffrax's own step to 1e-13."""
    problem, sv = problem_and_sv
    saveat = diffrax.SaveAt(ts=TS, dense=True)
    ours = _solve(problem, sv, _UNROLLED[method](), saveat, dt0=0.5)
    ref = _solve(problem, sv, method(), saveat, dt0=0.5)
    probe = jnp.linspace(0.37, 49.3, 23)  # inside steps: the interpolant, not step ends
    for a, b in zip(jax.vmap(ours.evaluate)(probe), jax.vmap(ref.evaluate)(probe)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    for a, b in zip(ours.ys, ref.ys):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_solve_reduced_uses_unrolled_and_matches_stock(problem_and_sv):
    """The public solve swaps a plain Dopri8 for the unrolled one. With adaptive steps the
    two step grids may differ (the error estimate is at round-off level in the first steps,
    where the two sum their stages in different orders), so both are held to a tight
    reference instead: Dopri8 at 1e-10 lands within 2e-12 of it."""
    problem, sv = problem_and_sv
    ref = sd.solve_reduced(problem, sv, TS, rtol=1e-13, atol=1e-13)
    fast = sd.solve_reduced(problem, sv, TS, **TOLS)
    stock = sd.solve_reduced(problem, sv, TS, solver=diffrax.Dopri8(scan_kind="lax"), **TOLS)
    assert abs(int(fast.stats["num_steps"]) - int(stock.stats["num_steps"])) <= 2
    for sol in (fast, stock):
        for a, b in zip(sol.ys, ref.ys):
            np.testing.assert_allclose(a, b, rtol=2e-12, atol=1e-15)


def test_unrolled_gradient_matches_stock(problem_and_sv):
    """Reverse mode through the solve (diffrax's checkpointed adjoint) agrees to 1e-12."""
    problem, sv = problem_and_sv

    def final_loss(scale, solver):
        sol = _solve(problem, (scale * sv[0], sv[1]), solver, diffrax.SaveAt(t1=True), dt0=0.5)
        return jnp.sum(sol.ys[0] * sol.ys[1])

    g_fast = jax.grad(final_loss)(1.1, _UNROLLED[diffrax.Dopri8]())
    g_stock = jax.grad(final_loss)(1.1, diffrax.Dopri8())
    np.testing.assert_allclose(g_fast, g_stock, rtol=1e-12)


class _Kink(eqx.Module):
    """dy/dt = -y before t = 3 and -2 y after: a vector field with a jump in time."""

    def __call__(self, t, y, args):
        return jnp.where(t < 3.0, -y, -2.0 * y)


@pytest.mark.parametrize("method", sorted(_UNROLLED, key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_unrolled_reevaluates_after_a_jump(method):
    """With `jump_ts`, the first stage after the jump must be f(t0+, y0), not the stored
    f(t0-, y0): against the closed form exp(-3) exp(-2 (t - 3)) at t = 10, and in as many
    steps as diffrax's own step. (Skipping the re-evaluation gave 3e-10 and 86 steps
    instead of 2.5e-11 and 55 for Dopri8.)"""

    def solve(solver):
        controller = diffrax.PIDController(rtol=1e-10, atol=1e-20, jump_ts=jnp.array([3.0]))
        return diffrax.diffeqsolve(diffrax.ODETerm(_Kink()), solver, 0.0, 10.0, None,
                                   jnp.ones(2), stepsize_controller=controller)

    ours, stock = solve(_UNROLLED[method]()), solve(method())
    # Dopri8 lands 2.5e-11 from it; the fifth-order methods 1.2e-10 and 5.5e-10.
    bound = 1e-10 if method is diffrax.Dopri8 else 2e-9
    np.testing.assert_allclose(ours.ys[-1], np.exp(-3.0 - 14.0), rtol=bound)
    assert abs(int(ours.stats["num_steps"]) - int(stock.stats["num_steps"])) <= 2
