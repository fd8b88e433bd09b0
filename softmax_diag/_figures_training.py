"""Figures 5 and 7: small random initialization, and optax training (see `docs/figures.md`)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _metrics as metrics
from ._bases import spectral_basis
from ._figures_dynamics import log_axes, log_times, new_figure, over_time, solve, tie
from ._init import hadamard_init, lift
from ._problem import UFM
from ._random_init import small_random_init, spectral_projection
from ._solve import solve_full
from ._train import train_full, train_reduced

# --------------------------------------------------------------------------- figure 5


def random_init(settings):
    """Figure 5: full ODE from a small random start vs reduced ODE from its projection."""
    k, d = settings.num_classes, settings.width
    problem = UFM(k, d)
    basis = spectral_basis(k)
    key = jax.random.PRNGKey(settings.seed + 5)
    params0 = small_random_init(key, problem, settings.random_scale)
    sv0, basis, frames0 = spectral_projection(problem, params0, basis=basis)
    ts = log_times(settings.t_random, settings.points)
    t = np.asarray(ts)[1:]
    sol = solve_full(problem, params0, ts, rtol=settings.rtol, atol=settings.rtol * 1e-4,
                     max_steps=200_000)
    full = tuple(np.asarray(y) for y in sol.ys)
    red = solve(problem, sv0, ts, settings, basis)

    def full_metrics(p):  # one compilation for everything measured on the full run
        return dict(
            sv=jnp.linalg.svd(p[0] @ p[1], compute_uv=False),
            leak_fixed=metrics.leakage(problem, p, basis, frames0),
            leak_refit=metrics.leakage(
                problem, p, basis, spectral_projection(problem, p, basis=basis)[2]),
            etf_error=metrics.nc(problem, p)["etf_error"],
            loss=metrics.loss(problem, p),
        )

    def reduced_metrics(sv):
        return dict(etf_error=metrics.spectral_nc(problem, sv)["etf_error"],
                    loss=metrics.spectral_loss(problem, sv, basis))

    on_full, on_red = over_time(full_metrics, full), over_time(reduced_metrics, red)
    sv_full, leak_fixed, leak_refit = on_full["sv"], on_full["leak_fixed"], on_full["leak_refit"]
    sv_red = np.sort(np.abs(red[0] * red[1]), axis=1)[:, ::-1]

    figure, (left, middle, right) = new_figure(3, width=4.6)
    for m in range(k):
        left.plot(t, sv_full[1:, m], color="tab:blue", lw=1.4,
                  label="full ODE, random start" if m == 0 else None)
        left.plot(t, sv_red[1:, m], "--", color="tab:orange", lw=1.4,
                  label="reduced ODE from the projection" if m == 0 else None)
    log_axes(left, title="singular values of the logits", legend=dict(fontsize=8))
    middle.plot(t, leak_fixed[1:], lw=1.8, label="w.r.t. the initial fitted frames")
    middle.plot(t, leak_refit[1:], lw=1.8, label="w.r.t. frames refitted at each t")
    log_axes(middle, title="leakage of the full solution", legend=dict(fontsize=8))
    right.plot(t, on_full["etf_error"][1:], lw=1.6, label="etf_error, full")
    right.plot(t, on_red["etf_error"][1:], "--", lw=1.6, label="etf_error, reduced")
    right.plot(t, on_full["loss"][1:], lw=1.2, color="k", label="loss, full")
    right.plot(t, on_red["loss"][1:], "--", lw=1.2, color="grey", label="loss, reduced")
    log_axes(right, title="neural collapse and loss", legend=dict(fontsize=8))
    figure.suptitle(
        f"Figure 5: small random init (entries N(0, {settings.random_scale:g}^2/d)), "
        f"K={k}, d={d}, depth 2, CE"
    )
    return figure


# --------------------------------------------------------------------------- figure 7


def _max_rel(a, b):
    a, b = (tuple(np.asarray(x) for x in v) for v in (a, b))
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for x, y in zip(a, b))


def optax_training(settings):
    """Figure 7: optax SGD vs gradient flow, and the leakage of Adam."""
    k, steps = settings.num_classes, settings.steps
    problem = UFM(k, settings.width)
    basis = spectral_basis(k)
    keys = jax.random.split(jax.random.PRNGKey(settings.seed + 7), 3)
    sv0 = tie(basis, tuple(
        jax.random.uniform(key, (k,), minval=0.3, maxval=1.0) for key in keys[:2]
    ))
    params0, basis, frames = hadamard_init(problem, sv0, key=keys[2], basis=basis)
    figure, (left, right) = new_figure(2)
    lrs = (0.5, 2.0, 8.0) if settings.all_optimizers else (2.0,)
    # optax's Adam mixes its int32 step count with floats (bias correction), which
    # `jax_numpy_dtype_promotion="strict"` refuses: run the optax loops with standard
    # promotion, scoped to this figure.
    with jax.numpy_dtype_promotion("standard"):
        for lr in lrs:
            gd = train_reduced(problem, sv0, optax.sgd(lr), steps, basis=basis)
            ts = jnp.asarray(lr * np.arange(steps + 1, dtype=np.float64))
            flow = solve(problem, sv0, ts, settings, basis)
            err = [np.linalg.norm(np.asarray(g) - f, axis=1) / np.linalg.norm(f, axis=1)
                   for g, f in zip(gd, flow)]
            err = np.max(np.stack(err), axis=0)
            left.plot(np.asarray(ts)[1:], err[1:], lw=1.6, label=f"optax.sgd({lr:g})")
        log_axes(left, xlabel="time t = lr x step",
                 ylabel="relative distance to the gradient flow",
                 title="gradient descent = Euler: error O(lr)", legend=dict(fontsize=8))

        optimizers = (
            ("sgd(0.5)", optax.sgd(0.5)),
            ("sgd(0.1, momentum=0.9)", optax.sgd(0.1, momentum=0.9)),
            ("sgd(0.1, momentum=0.9, nesterov)", optax.sgd(0.1, momentum=0.9, nesterov=True)),
            ("adam(0.01)", optax.adam(0.01)),
        )
        if not settings.all_optimizers:
            optimizers = optimizers[::3]
        floor = 1e-34
        lift_all = jax.jit(jax.vmap(lambda sv: lift(problem, sv, basis, frames)))
        leakage_all = jax.jit(jax.vmap(lambda p: metrics.leakage(problem, p, basis, frames)))
        for name, optimizer in optimizers:
            full = train_full(problem, params0, optimizer, steps)
            reduced = train_reduced(problem, sv0, optimizer, steps, basis=basis)
            gap = _max_rel(lift_all(reduced), full)
            leak = np.asarray(leakage_all(full))
            right.plot(np.arange(1, steps + 1), np.maximum(leak[1:], floor), lw=1.6,
                       label=f"{name}: lift(reduced) vs full {gap:.0e}")
    log_axes(right, xlabel="step", ylabel="leakage (off-diagonal energy fraction)",
             title="SGD and momentum stay spectral, Adam leaks", legend=dict(fontsize=7))
    figure.suptitle(
        f"Figure 7: optax training, K={k}, d={settings.width}, depth 2, CE, spectral start"
    )
    return figure
