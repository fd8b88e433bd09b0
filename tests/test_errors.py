"""Every bad input gets a ValueError / TypeError that names the argument."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import softmax_diag as sd

K, D = 4, 6
PROBLEM = sd.UFM(K, D)
SV0 = (jnp.linspace(0.3, 1.0, K), jnp.linspace(0.5, 1.1, K))
TS = jnp.linspace(0.0, 1.0, 3)


@pytest.fixture(scope="module")
def init():
    return sd.hadamard_init(PROBLEM, SV0, key=jax.random.PRNGKey(0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(num_classes=1, width=4), ValueError, "num_classes"),
        (dict(num_classes=4.5, width=4), TypeError, "num_classes"),
        (dict(num_classes=True, width=4), TypeError, "num_classes"),
        (dict(num_classes=4, width=0), ValueError, "width"),
        (dict(num_classes=4, width=4, depth=1), ValueError, "depth"),
        (dict(num_classes=4, width=4, loss="hinge"), ValueError, "loss"),
        (dict(num_classes=4, width=4, label_smoothing=1.0), ValueError, "label_smoothing"),
        (dict(num_classes=4, width=4, label_smoothing="a"), TypeError, "label_smoothing"),
        (dict(num_classes=4, width=4, loss="mse", label_smoothing=0.1), ValueError, "label"),
        (dict(num_classes=4, width=4, weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(num_classes=4, width=4, weight_decay=float("nan")), ValueError, "weight_decay"),
        (dict(num_classes=4, width=4, weight_decay=(0.1,)), ValueError, "weight_decay"),
        (dict(num_classes=4, width=4, samples_per_class=0), ValueError, "samples_per_class"),
    ],
)
def test_bad_problem(kwargs, error, match):
    with pytest.raises(error, match=match):
        sd.UFM(**kwargs)


def test_bad_bases_and_frames():
    with pytest.raises(ValueError, match="power of two"):
        sd.walsh_basis(6)
    with pytest.raises(ValueError, match="rank"):
        sd.random_frame(jax.random.PRNGKey(0), 3, 4)
    with pytest.raises(ValueError, match="basis"):
        sd.ReducedGradientFlow(PROBLEM, sd.walsh_basis(8))
    with pytest.raises(TypeError, match="basis"):
        sd.ReducedGradientFlow(PROBLEM, "walsh")
    with pytest.raises(ValueError, match="width"):
        sd.ReducedGradientFlow(sd.UFM(8, 4), sd.walsh_basis(8))


def test_bad_frames_in_lift(init):
    _, basis, (frame,) = init
    with pytest.raises(ValueError, match="orthonormal"):
        sd.lift(PROBLEM, SV0, basis, (2.0 * frame,))
    with pytest.raises(ValueError, match=r"frames\[0\]"):
        sd.lift(PROBLEM, SV0, basis, (frame[:, :2],))
    with pytest.raises(ValueError, match="frames"):
        sd.lift(PROBLEM, SV0, basis, (frame, frame))


def test_width_below_classes_refused_for_hadamard_init():
    with pytest.raises(ValueError, match="width"):
        sd.hadamard_init(sd.UFM(8, 4), (jnp.ones(8), jnp.ones(8)), key=jax.random.PRNGKey(0))


@pytest.mark.parametrize(
    "sv0, error, match",
    [
        ((jnp.ones(K),), ValueError, "depth"),
        ((jnp.ones(K), jnp.ones(K + 1)), ValueError, r"sv0\[1\]"),
        ((jnp.ones((K, 1)), jnp.ones(K)), ValueError, r"sv0\[0\]"),
        (jnp.ones((2, K)), TypeError, "sv0"),
        ((jnp.ones(K), jnp.ones(K, dtype=jnp.float32)), TypeError, "dtype"),
        ((jnp.ones(K).at[1].set(jnp.nan), jnp.ones(K)), ValueError, "NaN"),
        ((jnp.ones(K), jnp.ones(K).at[0].set(jnp.inf)), ValueError, "inf"),
        (("a", jnp.ones(K)), TypeError, "sv0"),
    ],
)
def test_bad_initial_singular_values(sv0, error, match):
    with pytest.raises(error, match=match):
        sd.solve_reduced(PROBLEM, sv0, TS)
    with pytest.raises(error, match=match):
        sd.hadamard_init(PROBLEM, sv0, key=jax.random.PRNGKey(0))


def test_bad_params(init):
    params0, _, _ = init
    with pytest.raises(ValueError, match=r"params0\[0\]"):
        sd.solve_full(PROBLEM, (params0[0].T, params0[1]), TS)
    with pytest.raises(ValueError, match="params0"):
        sd.solve_full(PROBLEM, params0[:1], TS)
    with pytest.raises(ValueError, match="NaN"):
        sd.solve_full(PROBLEM, (params0[0].at[0, 0].set(jnp.nan), params0[1]), TS)
    with pytest.raises(TypeError, match="problem"):
        sd.solve_full("not a problem", params0, TS)


@pytest.mark.parametrize(
    "ts, match",
    [
        (jnp.array([]), "non-empty"),
        (jnp.ones((2, 2)), "1D"),
        (jnp.array([-1.0, 1.0]), ">= 0"),
        (jnp.array([0.0, 2.0, 1.0]), "sorted"),
        (jnp.array([0.0, jnp.nan]), "NaN"),
        (jnp.array([0.0, 0.0]), r"ts\[-1\]"),
    ],
)
def test_bad_times(ts, match):
    with pytest.raises(ValueError, match=match):
        sd.solve_reduced(PROBLEM, SV0, ts)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(rtol=0.0), ValueError, "rtol"),
        (dict(atol=-1e-8), ValueError, "atol"),
        (dict(rtol=float("nan")), ValueError, "rtol"),
        (dict(rtol=jnp.ones(2)), ValueError, "rtol"),
        (dict(rtol=1e-17), ValueError, "float64"),
        (dict(max_steps=0), ValueError, "max_steps"),
        (dict(max_steps=2.5), TypeError, "max_steps"),
        (dict(solver=diffrax.Euler()), TypeError, "solver"),
    ],
)
def test_bad_solver_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        sd.solve_reduced(PROBLEM, SV0, TS, **kwargs)


def test_float32_with_float64_tolerance_says_how_to_enable_x64():
    sv32 = tuple(v.astype(jnp.float32) for v in SV0)
    with pytest.raises(ValueError, match="jax_enable_x64"):
        sd.solve_reduced(PROBLEM, sv32, TS)  # default rtol = 1e-10
    sol = sd.solve_reduced(PROBLEM, sv32, TS, rtol=1e-5, atol=1e-5)  # deliverable
    assert sol.ys[0].dtype == jnp.float32


def test_traced_bad_values_raise_at_run_time():
    """Under jit the checks are `eqx.error_if`s at the solve boundary."""
    solve = eqx.filter_jit(lambda sv, ts: sd.solve_reduced(PROBLEM, sv, ts).ys)
    bad_sv = (SV0[0].at[0].set(jnp.nan), SV0[1])
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN"):
        jax.block_until_ready(solve(bad_sv, TS))
    with pytest.raises(eqx.EquinoxRuntimeError, match="ts"):
        jax.block_until_ready(solve(SV0, jnp.array([0.0, 2.0, 1.0])))


def test_checks_accept_constants_captured_by_jit():
    """Concrete arrays closed over by a jitted function are checked on the host."""
    fourier = sd.fourier_basis(5)
    sv5 = (jnp.linspace(0.3, 1.0, 5).at[2].set(0.4), jnp.ones(5))
    sv5 = tuple(v.at[2].set(v[1]).at[4].set(v[3]) for v in sv5)  # tie the two pairs
    out = jax.jit(lambda: sd.solve_reduced(sd.UFM(5, 5), sv5, TS, basis=fourier).ys[0])()
    eager = sd.solve_reduced(sd.UFM(5, 5), sv5, TS, basis=fourier).ys[0]
    assert jnp.allclose(out, eager, rtol=1e-12)


def test_float32_path_reaches_its_documented_accuracy():
    """docs/errors.md: float32 solves are good to ~1e-6 relative (bound here 1e-5)."""
    ts = jnp.array([0.0, 1.0, 10.0, 100.0])
    ref = sd.solve_reduced(PROBLEM, SV0, ts, rtol=1e-12, atol=1e-12)
    sv32 = tuple(v.astype(jnp.float32) for v in SV0)
    sol = sd.solve_reduced(PROBLEM, sv32, ts, rtol=1e-5, atol=1e-5)
    for x, y in zip(sol.ys, ref.ys):
        assert float(jnp.max(jnp.abs(x.astype(jnp.float64) - y) / jnp.abs(y))) <= 1e-5
