"""Property test: random problems (K, width, depth, loss, scales), reduced == full."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import softmax_diag as sd

TS = jnp.array([0.0, 0.5, 2.0, 10.0])


@st.composite
def problems(draw):
    K = draw(st.sampled_from([2, 3, 4, 5, 6, 8]))
    width = K + draw(st.integers(0, 2))
    depth = draw(st.integers(2, 3))
    loss = draw(st.sampled_from(["ce", "mse"]))
    smoothing = draw(st.sampled_from([0.0, 0.2])) if loss == "ce" else 0.0
    decay = draw(st.sampled_from([0.0, 0.05]))
    n = draw(st.integers(1, 2))
    scale = draw(st.sampled_from([0.1, 1.0, 2.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    problem = sd.UFM(K, width, depth=depth, loss=loss, label_smoothing=smoothing,
                     weight_decay=decay, samples_per_class=n)
    return problem, scale, seed


@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_reduced_equals_full_on_random_problems(case):
    problem, scale, seed = case
    K = problem.num_classes
    basis = sd.spectral_basis(K)
    keys = jax.random.split(jax.random.PRNGKey(seed), problem.depth + 1)
    sv0 = [scale * jax.random.uniform(k, (K,), minval=0.1, maxval=1.0) for k in keys[:-1]]
    if basis.pairs:
        idx = np.asarray(basis.pairs)
        sv0 = [v.at[idx[:, 1]].set(v[idx[:, 0]]) for v in sv0]
    params0, basis, frames = sd.hadamard_init(problem, tuple(sv0), key=keys[-1], basis=basis)
    tol = dict(rtol=1e-12, atol=1e-12)  # the bar of DESIGN.md 5
    full = sd.solve_full(problem, params0, TS, **tol)
    red = sd.solve_reduced(problem, tuple(sv0), TS, basis=basis, **tol)
    lifted = jax.vmap(lambda sv: sd.lift(problem, sv, basis, frames))(red.ys)
    for x, y in zip(lifted, full.ys):
        err = jnp.linalg.norm((x - y).reshape(len(TS), -1), axis=1)
        norm = jnp.linalg.norm(y.reshape(len(TS), -1), axis=1)
        assert float(jnp.max(err / norm)) <= 1e-10, problem
