"""`solve_full` and `solve_reduced`: thin, checked wrappers around `diffrax.diffeqsolve`."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np

from ._bases import check_tied, spectral_basis
from ._checks import check_int, check_times, check_tolerances, is_concrete
from ._fields import FullGradientFlow, ReducedGradientFlow
from ._init import check_params, check_sv
from ._problem import UFM, check_problem

DEFAULT_MAX_STEPS = 100_000


class LogTime(eqx.Module):
    r"""The same flow in log time $\tau = \log(1 + t)$: $dy/d\tau = (1 + t)\, f(t, y)$.

    Gradient flow on cross-entropy slows down like $1/t$ once the loss is small, so equal
    steps in $\tau$ suit long horizons: about half the steps of plain time to `t = 1e12`.
    """

    field: eqx.Module

    def __call__(self, tau, y, args):
        t = jnp.expm1(tau)
        return jax.tree.map(lambda v: jnp.exp(tau) * v, self.field(t, y, args))


def _unrolled_init(self, terms, t0, t1, y0, args):
    return terms.vf(t0, y0, args)  # f(t0, y0): the first stage of the first step


def _unrolled_step(self, terms, t0, t1, y0, args, solver_state, made_jump):
    """One step of an explicit, first-same-as-last, "ssal" Runge-Kutta method, its stages
    unrolled at trace time: the same tableau, stage reuse, error estimate and dense output
    as diffrax's generic step (solutions agree to round-off), as straight-line code."""
    tableau = self.tableau
    control = terms.contr(t0, t1)
    f0 = solver_state  # f(t0, y0), the last stage of the previous accepted step
    if made_jump is not False:  # statically False unless the controller has jump_ts
        f0 = jax.lax.cond(made_jump, lambda: terms.vf(t0, y0, args), lambda: f0)
    ks = [terms.prod(f0, control)]
    for a_i, c_i in zip(tableau.a_lower, tableau.c):
        yi = _combine(y0, a_i, ks)
        ti = t1 if c_i == 1 else t0 + float(c_i) * (t1 - t0)
        fi = terms.vf(ti, yi, args)
        ks.append(terms.prod(fi, control))
    y1 = yi  # the last stage is the solution ("ssal"), evaluated at t1
    y_error = _combine(None, tableau.b_error, ks)
    dense_info = dict(y0=y0, y1=y1, k=jtu.tree_map(lambda *k: jnp.stack(k), *ks))
    return y1, y_error, dense_info, fi, diffrax.RESULTS.successful


# diffrax runs the stages of its Runge-Kutta methods in an inner loop that contracts the
# whole stage buffer at every stage; on CPU that costs about as much as the vector field
# of a small problem (1.5-1.9x on whole solves for K <= 128, see benchmarks/RESULTS.md).
# `_integrate` swaps these methods for the same ones with unrolled stages. The step
# implements diffrax's solver contract (`init`/`step`, tableau fields, dense `k`), which
# tests/test_unrolled.py checks against diffrax's own step; on a diffrax release that
# contract was not checked against, the stock solvers are used.
_DIFFRAX_CHECKED = ((0, 6), (0, 7))
_UNROLLED = (
    {
        cls: type(f"_Unrolled{cls.__name__}", (cls,),
                  dict(init=_unrolled_init, step=_unrolled_step))
        for cls in (diffrax.Dopri8, diffrax.Dopri5, diffrax.Tsit5)
    }
    if tuple(int(v) for v in diffrax.__version__.split(".")[:2]) in _DIFFRAX_CHECKED
    else {}
)


def _combine(y0, coeffs, ks):
    """`y0 + sum_j coeffs[j] ks[j]` over the nonzero coefficients, leaf by leaf."""
    terms = [(float(c), k) for c, k in zip(coeffs, ks) if c != 0]

    def leaf(*leaves):
        start, rest = (None, leaves) if y0 is None else (leaves[0], leaves[1:])
        total = start
        for (c, _), k in zip(terms, rest):
            total = c * k if total is None else total + c * k
        return total

    trees = [k for _, k in terms]
    return jtu.tree_map(leaf, *trees) if y0 is None else jtu.tree_map(leaf, y0, *trees)


@eqx.filter_jit
def _integrate(field, y0, ts, rtol, atol, solver, max_steps, progress, throw, norm=None):
    # Everything that may change between calls of the same shape (`y0`, `ts`,
    # tolerances) is an array, so it is traced: one compilation per shape and solver.
    # `norm` (static) replaces the PID controller's RMS norm (`solve_batch`'s shared steps).
    if type(solver) in _UNROLLED and solver.scan_kind is None:
        solver = _UNROLLED[type(solver)]()  # the same method, faster (see `_UNROLLED`)
    return diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        solver,
        t0=jnp.zeros((), ts.dtype),
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        # Step exactly onto every save time: values at `ts` are then step endpoints under
        # error control, not dense-output interpolants (whose error is not controlled
        # and reached ~1e-11 relative at rtol = 1e-14).
        stepsize_controller=diffrax.ClipStepSizeController(
            diffrax.PIDController(rtol=rtol, atol=atol, **_norm_kwargs(norm)), step_ts=ts
        ),
        max_steps=max_steps,
        throw=throw,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


def _norm_kwargs(norm) -> dict:
    return {} if norm is None else dict(norm=norm)  # None: diffrax's default RMS norm


def check_solve_options(dtype, ts, rtol, atol, solver, max_steps, log_time) -> tuple:
    """The options every solve takes, checked: `(ts, rtol, atol, solver, max_steps)`,
    with `ts` cast to `dtype` (the initial values') and the default solver filled in."""
    ts = check_times(ts)
    if ts.dtype != dtype:
        ts = ts.astype(dtype)
    if not isinstance(log_time, bool):
        raise TypeError(f"`log_time` must be True or False, got {log_time!r}.")
    rtol, atol = check_tolerances(rtol, atol, dtype)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    solver = diffrax.Dopri8() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractAdaptiveSolver):
        raise TypeError(
            f"`solver` must be an adaptive diffrax solver (e.g. diffrax.Dopri8(), "
            f"diffrax.Tsit5()), got {type(solver).__name__}."
        )
    return ts, rtol, atol, solver, max_steps


def _solve(field, y0, ts, rtol, atol, solver, max_steps, progress, throw, name, log_time):
    ts, rtol, atol, solver, max_steps = check_solve_options(
        y0[0].dtype, ts, rtol, atol, solver, max_steps, log_time
    )
    traced = not all(is_concrete(leaf) for leaf in jax.tree.leaves((y0, ts, rtol, atol)))
    # Outside jit we raise our own error (and can keep the partial solution); under a
    # trace only diffrax's runtime check is available.
    if log_time:
        sol = _integrate(LogTime(field), y0, jnp.log1p(ts), rtol, atol, solver, max_steps,
                         bool(progress), throw and traced)
        sol = eqx.tree_at(lambda s: s.ts, sol, ts)  # report the times asked for
    else:
        sol = _integrate(
            field, y0, ts, rtol, atol, solver, max_steps, bool(progress), throw and traced
        )
    if throw and not traced and not bool(jnp.all(sol.result == diffrax.RESULTS.successful)):
        steps = int(np.max(np.asarray(sol.stats["num_steps"])))
        raise RuntimeError(
            f"{name} stopped early after {steps} steps (max_steps={max_steps}): "
            f"{_describe(sol)} Pass a larger `max_steps=` or looser rtol/atol; pass "
            "`throw=False` to get the partial solution, with its `result`, instead of "
            "this error."
        )
    return sol


def _describe(sol) -> str:
    if jnp.ndim(sol.result._value) == 0:
        return diffrax.RESULTS[sol.result]
    return "at least one solve of the batch failed"


def solve_full(
    problem: UFM,
    params0,
    ts,
    *,
    rtol=1e-10,
    atol=1e-10,
    solver=None,
    max_steps: int = 100_000,
    progress: bool = False,
    throw: bool = True,
    log_time: bool = False,
) -> diffrax.Solution:
    r"""Solves the gradient flow on the weight matrices from `t0 = 0` to `ts[-1]`.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `params0`: `(W_L, ..., W_1)` at `t = 0`, float64 advised.
    - `ts`: save times, 1D, `>= 0`, non-decreasing; saved exactly (`sol.ts == ts`).
    - `rtol`, `atol`: tolerances of diffrax's `PIDController` (passed as arrays: new
        values do not recompile).
    - `solver`: an adaptive diffrax solver. Default `diffrax.Dopri8()`: at the tight
        tolerances this package is about (`1e-10`-`1e-12`) an 8th-order method takes
        several times fewer steps than 5th-order ones (`Tsit5`), which more than pays
        for its 13 stages: at equal achieved error it was 1.8-2.6x faster than `Tsit5` and
        `Dopri5` on both ODEs at `K = 128` (see the Benchmarks page).
    - `max_steps`: step limit; reaching it raises `RuntimeError` (or, with
        `throw=False`, returns the solution with its failure `result`, unreached save
        times filled with `inf`).
    - `progress`: show diffrax's `TqdmProgressMeter`.
    - `throw`: raise on solver failure.
    - `log_time`: integrate in $\tau = \log(1 + t)$ (see `LogTime`): the same solution
        with about half the steps on horizons of many decades (measured: 106 vs 196
        steps to `t = 1e12`, 144 vs 305 to `t = 1e20`, `K = 16`, `rtol = 1e-12`). Error
        control then acts on steps in $\tau$. `sol.ts` still holds `ts`.

    **Returns:** a `diffrax.Solution` whose `ys` is a tuple shaped like `params0` with a
    leading time axis.

    Pure JAX: `jax.jit` and `jax.vmap` over `params0` work.
    """
    params0 = check_params(check_problem(problem), params0, "params0")
    return _solve(
        FullGradientFlow(problem), params0, ts, rtol, atol, solver, max_steps,
        progress, throw, "solve_full", log_time,
    )


def solve_reduced(
    problem: UFM,
    sv0,
    ts,
    *,
    basis=None,
    rtol=1e-10,
    atol=1e-10,
    solver=None,
    max_steps: int = 100_000,
    progress: bool = False,
    throw: bool = True,
    log_time: bool = False,
) -> diffrax.Solution:
    """Solves the singular-value ODE of [`ReducedGradientFlow`][softmax_diag.ReducedGradientFlow].

    Arguments as [`solve_full`][softmax_diag.solve_full], with `sv0` a tuple of `depth`
    vectors of length `K` (output layer first) and `basis` defaulting to
    `spectral_basis(K)`. Lifting the singular values saved at time `ts[i]`,
    `lift(problem, tuple(y[i] for y in sol.ys), basis, frames)`, gives the weight
    matrices of the full flow started from `lift(problem, sv0, basis, frames)`.

    **Returns:** a `diffrax.Solution` whose `ys` is a tuple of `(T, K)` arrays.
    """
    problem = check_problem(problem)
    basis = spectral_basis(problem.num_classes) if basis is None else basis
    field = ReducedGradientFlow(problem, basis)
    sv0 = check_tied("sv0", basis, check_sv(problem, sv0, "sv0"))
    return _solve(
        field, sv0, ts, rtol, atol, solver, max_steps, progress, throw, "solve_reduced",
        log_time,
    )


