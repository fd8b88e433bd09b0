"""Figures 1-4 and 6: phenomena of the reduced ODE (see `docs/figures.md`)."""

import jax
import jax.numpy as jnp
import numpy as np

from . import _metrics as metrics
from ._bases import spectral_basis
from ._fields import ReducedGradientFlow
from ._problem import UFM
from ._solve import solve_reduced

# --------------------------------------------------------------------------- helpers


def log_times(t1: float, points: int, first: float = 1e-2):
    """`[0]` followed by `points` log-spaced times from `first` to `t1` (float64)."""
    grid = np.logspace(np.log10(first), np.log10(t1), points)
    return jnp.asarray(np.concatenate([[0.0], grid]))


def tie(basis, vectors):
    """Copies the cosine value of each tied Fourier pair onto the sine column."""
    if not basis.pairs:
        return vectors
    idx = np.asarray(basis.pairs)
    return tuple(v.at[..., idx[:, 1]].set(v[..., idx[:, 0]]) for v in vectors)


def solve(problem, sv0, ts, settings, basis=None):
    """`solve_reduced` with the figure tolerances; returns `ys` as numpy arrays."""
    sol = solve_reduced(
        problem, sv0, ts, basis=basis, rtol=settings.rtol, atol=settings.rtol * 1e-4,
        max_steps=200_000,
    )
    return tuple(np.asarray(y) for y in sol.ys)


def over_time(fn, ys):
    """`jax.jit(jax.vmap(fn))` over the leading (time) axis of a tuple of arrays (one
    compilation instead of one per primitive)."""
    out = jax.jit(jax.vmap(fn))(tuple(jnp.asarray(y) for y in ys))
    return jax.tree.map(np.asarray, out)


def mode_colors(num: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(num - 1, 1)) for i in range(num)]


def new_figure(columns: int, width: float = 5.2, height: float = 4.0):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns, height), layout="constrained")
    return figure, figure.subplots(1, columns, squeeze=False)[0]


def log_axes(axis, *, xlabel="time t", ylabel=None, title=None, yscale="log", legend=None):
    """The panel layout every figure uses: log time axis, labels, title, legend
    (`legend`: keyword arguments of `axis.legend`, or None for no legend)."""
    axis.set_xscale("log")
    axis.set_yscale(yscale)
    axis.set_xlabel(xlabel)
    if ylabel is not None:
        axis.set_ylabel(ylabel)
    if title is not None:
        axis.set_title(title)
    if legend is not None:
        axis.legend(**legend)


# --------------------------------------------------------------------------- figure 1


def ce_vs_mse(settings):
    """Figure 1: singular values over time, CE vs squared loss, same balanced start."""
    k = settings.num_classes
    ts = log_times(settings.t_mid, settings.points)
    a0 = jnp.asarray(np.sqrt(np.geomspace(1e-2, 0.5, k)))
    figure, (left, right) = new_figure(2)
    colors = mode_colors(k)
    t = np.asarray(ts)[1:]
    for axis, loss in ((left, "ce"), (right, "mse")):
        a, b = solve(UFM(k, settings.width, loss=loss), (a0, a0), ts, settings)
        z = (a * b)[1:]
        for m in range(k):
            axis.plot(t, z[:, m], color=colors[m], lw=1.6, label=f"mode {m}")
        log_axes(axis, ylabel="$z_m = a_m b_m$")
    # Squared loss: each mode is an independent logistic curve (DESIGN.md, closed form).
    z0 = np.asarray(a0) ** 2
    decay = np.exp(-2 * t[:, None] / k)  # z0 e^{2t/K} / (1 - z0 + z0 e^{2t/K}), no overflow
    closed = z0[None, :] / (z0[None, :] + (1 - z0[None, :]) * decay)
    gap = np.max(np.abs(z - closed))  # `z` is the squared-loss run
    for m in range(k):
        right.plot(t, closed[:, m], "k:", lw=1.0, label="logistic closed form" if m == 0 else None)
    left.set_title("cross-entropy: modes coupled through the softmax")
    right.set_title("squared loss: independent logistic curves")
    right.text(0.03, 0.95, f"max |ODE - closed form| = {gap:.1e}", transform=right.transAxes,
               fontsize=8, va="top")
    left.legend(fontsize=7, ncol=2)
    right.legend(fontsize=7, ncol=2)
    figure.suptitle(f"Figure 1: K={k}, depth 2, balanced start a = b (same start both panels)")
    return figure


# --------------------------------------------------------------------------- figure 2


def nc_and_lyapunov(settings):
    """Figure 2: NC metrics up to t_long, and the Lyapunov candidate over many starts."""
    k = settings.nc_classes
    problem = UFM(k, settings.width)
    basis = spectral_basis(k)
    ts = log_times(settings.t_long, settings.points)
    t = np.asarray(ts)[1:]
    keys = jax.random.split(jax.random.PRNGKey(settings.seed), 4)
    sv0 = tie(basis, tuple(
        jax.random.uniform(key, (k,), minval=0.2, maxval=1.2) for key in keys[:2]
    ))
    ys = solve(problem, sv0, ts, settings, basis)
    nc = over_time(lambda sv: metrics.spectral_nc(problem, sv), ys)
    losses = over_time(lambda sv: metrics.spectral_loss(problem, sv, basis), ys)
    figure, (left, right) = new_figure(2)
    for key in ("etf_error", "etf_error_classifier", "etf_error_logits", "self_duality"):
        left.plot(t, nc[key][1:], lw=1.6, label=key)
    left.plot(t, losses[1:], "k--", lw=1.2, label="loss")
    log_axes(left, title="NC metrics (spectral), one unbalanced start", legend=dict(fontsize=8))

    n = settings.starts
    balanced = jax.random.uniform(keys[2], (n, k), minval=0.2, maxval=1.2)
    # Unbalanced: a_m, b_m independent and log-uniform over three decades.
    unbalanced = 10.0 ** jax.random.uniform(keys[3], (2, n, k), minval=-2.0, maxval=1.0)
    kinds = (
        ("balanced a = b", tie(basis, (balanced, balanced)), "tab:blue"),
        ("unbalanced", tie(basis, (unbalanced[0], unbalanced[1])), "tab:orange"),
    )
    lyapunov = jax.jit(jax.vmap(lambda sv: metrics.lyapunov(problem, sv)))
    for name, starts, color in kinds:
        # A loop of unbatched solves: they share the compilation of the solve above.
        v = np.stack([
            np.asarray(lyapunov(solve(problem, tuple(x[i] for x in starts), ts, settings, basis)))
            for i in range(n)
        ])
        rises = np.diff(v, axis=1) > 1e-7 * np.sqrt(np.abs(v[:, :-1])) + 1e-14
        risen = int(np.sum(np.any(rises, axis=1)))
        for i in range(n):
            right.plot(t, v[i, 1:] / v[i, 0], color="tab:red" if rises[i].any() else color,
                       lw=1.0, alpha=0.8,
                       label=f"{name}: {risen} of {n} starts rise at some t" if i == 0 else None)
    log_axes(right, ylabel="V(t) / V(0)", title="Lyapunov candidate V (red: V rises somewhere)",
             legend=dict(fontsize=8))
    figure.suptitle(f"Figure 2: slow neural collapse and the Lyapunov candidate, K={k}, depth 2, "
                    "CE, no weight decay")
    return figure


# --------------------------------------------------------------------------- figure 3


def lagging_mode(settings):
    """Figure 3: a mode that starts behind and almost stops once the loss is small."""
    k = settings.num_classes
    problem = UFM(k, settings.width)
    basis = spectral_basis(k)
    ts = log_times(settings.t_long, settings.points)
    t = np.asarray(ts)[1:]
    a0 = jax.random.uniform(jax.random.PRNGKey(settings.seed + 3), (k,), minval=0.75,
                            maxval=0.95)
    lag = k - 1
    a0 = tie(basis, (a0.at[lag].set(0.1),))[0]
    ys = solve(problem, (a0, a0), ts, settings, basis)
    z = ys[0] * ys[1]
    field = ReducedGradientFlow(problem, basis)

    def zdot(sv):
        da, db = field(0.0, sv, None)
        return da * sv[1] + sv[0] * db

    rates = over_time(zdot, ys)
    losses = over_time(lambda sv: metrics.spectral_loss(problem, sv, basis), ys)
    figure, (left, right) = new_figure(2)
    colors = mode_colors(k)
    lead = 1 + int(np.argmax(z[-1, 1:]))
    for m in range(k):
        style = dict(color="tab:red", lw=2.4) if m == lag else dict(color=colors[m], lw=1.2)
        left.plot(t, z[1:, m], label=f"mode {m}" + (" (lagging)" if m == lag else ""), **style)
    log_axes(left, ylabel="$z_m$", title="a mode started 50x behind the others",
             legend=dict(fontsize=7, ncol=2))
    right.plot(t, rates[1:, lag], color="tab:red", lw=2.0, label=f"dz/dt, lagging mode {lag}")
    right.plot(t, rates[1:, lead], color="tab:green", lw=1.4, label=f"dz/dt, leading mode {lead}")
    right.plot(t, losses[1:], "k--", lw=1.2, label="loss")
    right.plot(t, 1.0 / t, ":", color="grey", lw=1.0, label="1/t")
    log_axes(right, title="growth rates collapse with the loss", legend=dict(fontsize=8))
    figure.suptitle(f"Figure 3: lagging mode, K={k}, depth 2, CE, balanced start")
    return figure


# --------------------------------------------------------------------------- figure 4


def zero_mode(settings):
    """Figure 4: a mode at exactly 0 stays there; a tiny one escapes."""
    k = settings.num_classes
    problem = UFM(k, settings.width)
    basis = spectral_basis(k)
    ts = log_times(settings.t_long, settings.points)
    t = np.asarray(ts)[1:]
    a0 = jax.random.uniform(jax.random.PRNGKey(settings.seed + 4), (k,), minval=0.08,
                            maxval=0.12)
    dead = k - 1
    starts = {
        "zero": a0.at[dead].set(0.0),  # z = 0: the invariant set of the critical points
        "tiny": a0.at[dead].set(1e-4),  # z = 1e-8
        "reference": a0,  # the same start with mode `dead` like the others
    }
    runs = {}
    for name, start in starts.items():
        start = tie(basis, (start,))[0]
        ys = solve(problem, (start, start), ts, settings, basis)
        nc = over_time(lambda sv: metrics.spectral_nc(problem, sv), ys)
        runs[name] = (ys[0] * ys[1], nc["etf_error"])
    figure, (left, right) = new_figure(2)
    colors = mode_colors(k)
    z_zero, z_tiny = runs["zero"][0], runs["tiny"][0]
    for m in range(k - 1):
        left.plot(t, z_zero[1:, m], color=colors[m], lw=1.2,
                  label=f"modes 0-{k - 2}" if m == 0 else None)
    left.plot(t, z_tiny[1:, dead], color="tab:red", lw=2.2,
              label=f"mode {dead} from $z=10^{{-8}}$: escapes")
    left.plot([], [], " ", label=f"mode {dead} from $z=0$: max$_t|z|$ = "
              f"{np.max(np.abs(z_zero[:, dead])):.1f} (not drawable)")
    log_axes(left, ylabel="$z_m$", title="a zero mode stays, a tiny mode escapes",
             legend=dict(fontsize=8, loc="lower right"))
    for name, label in (("zero", f"mode {dead} at 0 (spurious)"),
                        ("tiny", f"mode {dead} at $10^{{-8}}$"),
                        ("reference", f"mode {dead} like the others")):
        right.plot(t, runs[name][1][1:], lw=1.8, label=label)
    log_axes(right, title="etf_error: no collapse while a mode is missing",
             legend=dict(fontsize=8))
    figure.suptitle(f"Figure 4: spurious critical points, K={k}, depth 2, CE")
    return figure


# --------------------------------------------------------------------------- figure 6


def depth_spectra(settings):
    """Figure 6: final spectra for depth 2, 3, 4 with weight decay (depth favours low rank)."""
    k = settings.num_classes
    decay = 5e-3
    ts = log_times(settings.t_depth, settings.points)
    t = np.asarray(ts)[1:]
    basis = spectral_basis(k)
    a0 = tie(basis, (jnp.asarray(np.linspace(1.2, 0.4, k)),))[0]
    figure, (left, right) = new_figure(2)
    width = 0.8 / 3
    for j, depth in enumerate((2, 3, 4)):
        problem = UFM(k, settings.width, depth=depth, weight_decay=decay)
        ys = solve(problem, (a0,) * depth, ts, settings, basis)
        z = np.prod(np.stack(ys), axis=0)
        ranks = over_time(lambda sv: metrics.spectral_effective_rank(problem, sv), ys)
        left.bar(np.arange(k) + (j - 1) * width, z[-1], width,
                 label=f"depth {depth}: effective rank {ranks[-1]:.2f}")
        right.plot(t, ranks[1:], lw=1.8, label=f"depth {depth}")
    left.set_xlabel("mode m")
    left.set_ylabel(f"$z_m$ at t = {settings.t_depth:.0e}")
    left.set_title("final logit spectrum")
    left.legend(fontsize=8)
    log_axes(right, ylabel="effective rank of the logits", title="rank over time", yscale="linear",
             legend=dict(fontsize=8))
    figure.suptitle(
        f"Figure 6: K={k}, CE, weight decay {decay:g} on every layer, same balanced start"
    )
    return figure
