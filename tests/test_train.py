"""Discrete optax training: reduced == full for optimizers linear in the gradient history,
`optax.sgd(lr)` == `diffrax.Euler` with `dt0 = lr`, Adam leaves the spectral form; the
reduced gradient; small random init and the spectral projection.

Each (problem, optimizer, num_steps) compiles once (a few seconds on a small CPU), so the
optimizers and problems are module constants shared by the tests.
"""

import functools

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import softmax_diag as sd
from softmax_diag import metrics
from softmax_diag._losses import full_loss, reduced_loss

STEPS = 60
# Walsh, n = 1, depth 2, no weight decay; Fourier with tied pairs, n = 2, depth 3, decay.
WALSH = (sd.UFM(8, 10), sd.walsh_basis(8))
FOURIER = (sd.UFM(6, 7, samples_per_class=2, depth=3, weight_decay=0.01), sd.fourier_basis(6))
SGD = optax.sgd(0.25)  # dyadic: t = k * lr is exact in floating point
HEAVY_BALL = optax.sgd(0.1, momentum=0.9)
NESTEROV_DECOUPLED = optax.chain(
    optax.add_decayed_weights(1e-2), optax.sgd(0.1, momentum=0.9, nesterov=True)
)
ADAM = optax.adam(0.01)


def tied(basis, vectors):
    if not basis.pairs:
        return tuple(vectors)
    idx = np.asarray(basis.pairs)
    return tuple(v.at[..., idx[:, 1]].set(v[..., idx[:, 0]]) for v in vectors)


@functools.partial(jax.jit, static_argnums=(1, 2))  # compile once, not op by op
def spectral_start(key, problem, basis):
    keys = jax.random.split(key, problem.depth + 1)
    sv = tied(basis, [
        jax.random.uniform(k, (problem.num_classes,), minval=0.3, maxval=1.2)
        for k in keys[:-1]
    ])
    params, _, frames = sd.hadamard_init(problem, sv, key=keys[-1], basis=basis)
    return sv, params, frames


def max_rel(a, b):
    """max |a - b| / max |b| over a tuple of arrays (on the host: no compilation)."""
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / np.max(np.abs(np.asarray(y))))
        for x, y in zip(a, b)
    )


def lift_all(problem, trajectory, basis, frames):
    return jax.jit(jax.vmap(lambda sv: sd.lift(problem, sv, basis, frames)))(trajectory)


# --------------------------------------------------------------------------- reduced == full


@pytest.mark.parametrize(
    "case,optimizer",
    [("walsh", SGD), ("walsh", HEAVY_BALL), ("fourier", NESTEROV_DECOUPLED)],
    ids=["walsh-sgd", "walsh-heavy-ball", "fourier-nesterov-decoupled-decay"],
)
def test_reduced_training_equals_full_training(case, optimizer, getkey):
    """Linear in the gradient history: lift(train_reduced) == train_full to round-off.

    Both sides are sums of the same O(1) terms in a different order; after 60 steps the
    accumulated rounding is far below 1e-12 relative (measured ~1e-15)."""
    problem, basis = WALSH if case == "walsh" else FOURIER
    sv0, params0, frames = spectral_start(getkey(), problem, basis)
    full = sd.train_full(problem, params0, optimizer, STEPS, every=10)
    reduced = sd.train_reduced(problem, sv0, optimizer, STEPS, basis=basis, every=10)
    assert max_rel(lift_all(problem, reduced, basis, frames), full) < 1e-12
    leak = jax.vmap(lambda p: metrics.leakage(problem, p, basis, frames))(full)
    assert float(np.max(leak)) < 1e-26
    # The run moved: the identity is not the trivial one.
    assert max_rel(tuple(y[-1] for y in reduced), sv0) > 1e-2


def test_sgd_equals_diffrax_euler(getkey):
    """optax.sgd(lr) is explicit Euler with dt0 = lr on the same field: equal to ~1e-15."""
    problem, basis = WALSH
    sv0, params0, _ = spectral_start(getkey(), problem, basis)
    lr = 0.25
    for field, y0, trained in (
        (sd.FullGradientFlow(problem), params0, sd.train_full(problem, params0, SGD, STEPS)),
        (sd.ReducedGradientFlow(problem, basis), sv0,
         sd.train_reduced(problem, sv0, SGD, STEPS, basis=basis)),
    ):
        euler = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Euler(), t0=0.0, t1=lr * STEPS, dt0=lr, y0=y0,
            saveat=diffrax.SaveAt(t0=True, steps=True), max_steps=STEPS,
        )
        np.testing.assert_allclose(np.asarray(euler.ts), lr * np.arange(STEPS + 1), rtol=0)
        # Same additions in the same order; XLA may fuse a multiply-add differently.
        assert max_rel(trained, euler.ys) < 1e-14


def test_adam_leaves_the_spectral_form(getkey):
    """Adam rescales each matrix entry by its own second moment: the update is not a lift,
    so the full run leaks out of the spectral form, and Adam on singular values is a
    different algorithm (no identity)."""
    problem, basis = WALSH
    sv0, params0, frames = spectral_start(getkey(), problem, basis)
    # optax's Adam mixes its int32 step count with floats, which strict promotion refuses.
    with jax.numpy_dtype_promotion("standard"):
        full = sd.train_full(problem, params0, ADAM, STEPS, every=STEPS)
        reduced = sd.train_reduced(problem, sv0, ADAM, STEPS, basis=basis, every=STEPS)
    leak = float(metrics.leakage(problem, tuple(p[-1] for p in full), basis, frames))
    # 60 Adam steps of size ~1e-2 on O(1) entries move every entry by O(0.1) in its own
    # direction: leakage of order 1e-2, against < 1e-26 for the linear optimizers above.
    assert leak > 1e-4
    lifted = sd.lift(problem, tuple(y[-1] for y in reduced), basis, frames)
    assert max_rel(lifted, tuple(p[-1] for p in full)) > 1e-3


# --------------------------------------------------------------------------- API details


def test_trajectory_layout_every_and_vmap(getkey):
    problem, basis = WALSH
    sv0, params0, _ = spectral_start(getkey(), problem, basis)
    every1 = sd.train_reduced(problem, sv0, SGD, STEPS, basis=basis)
    every10 = sd.train_reduced(problem, sv0, SGD, STEPS, basis=basis, every=10)
    for y1, y10, v0 in zip(every1, every10, sv0):
        assert y1.shape == (STEPS + 1, 8) and y10.shape == (STEPS // 10 + 1, 8)
        np.testing.assert_array_equal(y1[0], v0)  # step 0 first, untouched
        np.testing.assert_array_equal(y10, y1[::10])  # thinning drops nothing else
    zero = sd.train_reduced(problem, sv0, SGD, 0, basis=basis)
    assert zero[0].shape == (1, 8)
    # vmap over starting points == a loop.
    batch = tuple(jnp.stack([v, 1.1 * v]) for v in sv0)
    mapped = jax.vmap(lambda sv: sd.train_reduced(problem, sv, SGD, STEPS, basis=basis))(batch)
    looped = sd.train_reduced(problem, tuple(1.1 * v for v in sv0), SGD, STEPS, basis=basis)
    for m, one, other in zip(mapped, every1, looped):
        np.testing.assert_allclose(m[0], one, rtol=1e-14)
        np.testing.assert_allclose(m[1], other, rtol=1e-14)


def test_bad_training_input_is_refused(getkey):
    problem, basis = FOURIER
    sv0, params0, _ = spectral_start(getkey(), problem, basis)
    with pytest.raises(ValueError, match="multiple of `every`"):
        sd.train_full(problem, params0, SGD, 10, every=3)
    with pytest.raises(TypeError, match="optax.GradientTransformation"):
        sd.train_full(problem, params0, "sgd", 10)
    with pytest.raises(TypeError, match="num_steps"):
        sd.train_reduced(problem, sv0, SGD, 10.5, basis=basis)
    with pytest.raises(ValueError, match="num_steps"):
        sd.train_reduced(problem, sv0, SGD, -1, basis=basis)
    untied = (sv0[0].at[1].set(5.0),) + sv0[1:]
    with pytest.raises(ValueError, match="tied Fourier pair"):
        sd.train_reduced(problem, untied, SGD, 10, basis=basis)
    with pytest.raises(ValueError, match="params0"):
        sd.train_full(problem, params0[:2], SGD, 10)


# --------------------------------------------------------------------------- the gradients


@pytest.mark.parametrize("n,decay", [(1, 0.0), (3, 0.02)])
def test_reduced_field_is_minus_the_gradient_of_the_reduced_loss_walsh(n, decay, getkey):
    """Walsh: the reduced loss f(sigma) = ell(column(z / sqrt n)) + penalties has gradient
    (1 / (K sqrt n)) s * prod_{j != l} sigma_j + lambda sigma_l: minus the reduced field."""
    problem = sd.UFM(8, 8, samples_per_class=n, weight_decay=decay)
    basis = sd.walsh_basis(8)
    sv = tuple(jax.random.uniform(getkey(), (8,), minval=0.2, maxval=1.5) for _ in range(2))
    field, grads = jax.jit(lambda sv: (
        sd.ReducedGradientFlow(problem, basis)(0.0, sv, None),
        jax.grad(lambda s: reduced_loss(problem, s, basis))(sv),
    ))(sv)
    for f, g in zip(field, grads):
        np.testing.assert_allclose(f, -g, rtol=1e-12, atol=1e-16)


def test_reduced_field_is_minus_the_gradient_of_the_lifted_loss_fourier(getkey):
    """Fourier: the field is -grad of L(lift(sigma)) (what train_reduced uses). jax.grad of
    the reduced loss differs: `column` reads one entry per tied pair, so the whole pair
    gradient lands on the cosine entry; pair sums agree."""
    problem, basis = FOURIER
    sv, _, frames = spectral_start(getkey(), problem, basis)

    @jax.jit
    def all_three(sv):
        field = sd.ReducedGradientFlow(problem, basis)(0.0, sv, None)
        lifted = jax.grad(lambda s: full_loss(problem, sd.lift(problem, s, basis, frames)))(sv)
        reduced = jax.grad(lambda s: reduced_loss(problem, s, basis))(sv)
        return field, lifted, reduced

    field, lifted, reduced = all_three(sv)
    idx = np.asarray(basis.pairs)
    for f, g, r in zip(field, lifted, reduced):
        np.testing.assert_allclose(f, -g, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(r[idx[:, 0]] + r[idx[:, 1]], 2 * g[idx[:, 0]],
                                   rtol=1e-12, atol=1e-16)


# --------------------------------------------------------------------------- random starts


def test_small_random_init_statistics(getkey):
    problem = sd.UFM(8, 64)
    scale = 0.01
    params = sd.small_random_init(getkey(), problem, scale)
    assert tuple(p.shape for p in params) == problem.shapes
    assert all(p.dtype == jnp.float64 for p in params)
    entries = np.concatenate([np.asarray(p).ravel() for p in params])
    # std of M i.i.d. normals: relative standard error 1/sqrt(2M); allow 5 of them.
    expected = scale / np.sqrt(64)
    assert abs(np.std(entries) / expected - 1) < 5 / np.sqrt(2 * entries.size)
    with pytest.raises(ValueError, match="scale"):
        sd.small_random_init(getkey(), problem, 0.0)
    with pytest.raises(TypeError, match="problem"):
        sd.small_random_init(getkey(), None, 0.1)


@pytest.mark.parametrize("case", ["walsh", "fourier"])
def test_spectral_projection_recovers_a_spectral_state(case, getkey):
    problem, basis = WALSH if case == "walsh" else FOURIER
    sv0, params0, frames = spectral_start(getkey(), problem, basis)
    sv, basis_out, fitted = sd.spectral_projection(problem, params0, basis=basis)
    assert basis_out is basis
    for a, b in zip(sv, sv0):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for a, b in zip(fitted, frames):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_spectral_projection_of_a_random_start(getkey):
    """The fitted frames keep more of a random state than random frames do, and the
    reduced ODE from the projection starts at the projected loss."""
    problem, basis = WALSH
    params = sd.small_random_init(getkey(), problem, 0.5)
    sv, _, fitted = sd.spectral_projection(problem, params, basis=basis)
    leak_fitted = float(metrics.leakage(problem, params, basis, fitted))
    random_frames = (sd.random_frame(getkey(), 10, 8),)
    leak_random = float(metrics.leakage(problem, params, basis, random_frames))
    assert 0.0 < leak_fitted < leak_random < 1.0
    projected = sd.lift(problem, sv, basis, fitted)
    np.testing.assert_allclose(
        metrics.loss(problem, projected), metrics.spectral_loss(problem, sv, basis), rtol=1e-13
    )
    # Orthogonal projection: energies add up.
    energy = sum(float(jnp.sum(w**2)) for w in params)
    kept = sum(float(jnp.sum(v**2)) for v in sv)
    np.testing.assert_allclose(kept / energy, 1.0 - leak_fitted, rtol=1e-12)
