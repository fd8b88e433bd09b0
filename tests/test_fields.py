"""The vector fields against independent references: autodiff, dense matrices, closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg

import softmax_diag as sd


def ce_loss(params, num_classes):
    """Mean CE over the K standard-basis samples, written with optax (independent)."""
    w, h = params
    logits = (w @ h).T  # (samples, classes)
    labels = jax.nn.one_hot(jnp.arange(num_classes), num_classes, dtype=logits.dtype)
    return jnp.mean(optax.softmax_cross_entropy(logits, labels))


@pytest.mark.parametrize("K,width", [(4, 6), (8, 8), (8, 3), (16, 20)])
def test_full_field_is_minus_grad_of_ce(K, width, getkey):
    problem = sd.UFM(K, width)
    params = (
        jax.random.normal(getkey(), (K, width)),
        jax.random.normal(getkey(), (width, K)),
    )
    field = sd.FullGradientFlow(problem)(0.0, params, None)
    grads = jax.grad(ce_loss)(params, K)
    for f, g in zip(field, grads):
        # Both are sums of O(K d) terms of size O(1): agree to round-off.
        np.testing.assert_allclose(f, -g, rtol=1e-12, atol=1e-15)


def _hadamard_problem(K, width, key, scale=1.0):
    problem = sd.UFM(K, width)
    ka, kb, kf = jax.random.split(key, 3)
    sv = (
        scale * jax.random.uniform(ka, (K,), minval=0.2, maxval=1.5),
        scale * jax.random.uniform(kb, (K,), minval=0.2, maxval=1.5),
    )
    params, basis, frames = sd.hadamard_init(problem, sv, key=kf)
    return problem, sv, params, basis, frames


@pytest.mark.parametrize("K", [2, 8, 32])
def test_reduced_field_is_the_projected_full_field(K, getkey):
    """Chain rule: under Hadamard init the full field is lift(reduced field)."""
    problem, sv, params, basis, frames = _hadamard_problem(K, K + 3, getkey())
    full = sd.FullGradientFlow(problem)(0.0, params, None)
    reduced = sd.ReducedGradientFlow(problem, basis)(0.0, sv, None)
    projected = sd.project(problem, full, basis, frames)
    for p, r in zip(projected, reduced):
        np.testing.assert_allclose(p, r, rtol=1e-11, atol=1e-15)
    # ... and nothing is lost in the projection: the full field is exactly a lift.
    relifted = sd.lift(problem, reduced, basis, frames)
    for f, r in zip(full, relifted):
        np.testing.assert_allclose(f, r, atol=1e-14)


@pytest.mark.parametrize("K", [4, 16])
def test_reduced_field_matches_dense_formula(K, getkey):
    """s = H softmax(H z / K) - 1 with the dense Sylvester matrix (DESIGN.md 3)."""
    problem, sv, _, basis, _ = _hadamard_problem(K, K, getkey())
    a, b = (np.asarray(v) for v in sv)
    hm = scipy.linalg.hadamard(K).astype(np.float64)
    phi = hm @ (a * b) / K
    pi = np.exp(phi - phi.max())
    pi /= pi.sum()
    s = hm @ pi - 1.0
    da, db = sd.ReducedGradientFlow(problem, basis)(0.0, sv, None)
    np.testing.assert_allclose(da, -s * b / K, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(db, -s * a / K, rtol=1e-12, atol=1e-16)


def test_fields_keep_relative_accuracy_at_vanishing_loss():
    """K = 2, z = (0, 700): the loss is ~e^-700, far below float64 epsilon.

    Closed form: phi = (z1/2, -z1/2), pi_1 = sigmoid(-z1), s_1 = -2 pi_1, so
    da_1 = -s_1 b_1 / 2 = sigmoid(-z1) b_1. Computing 1 - pi_0 by subtraction gives 0.
    """
    z1 = 700.0
    problem = sd.UFM(2, 2)
    sv = (jnp.array([1.0, np.sqrt(z1)]), jnp.array([1.0, np.sqrt(z1)]))
    da, _ = sd.ReducedGradientFlow(problem, sd.walsh_basis(2))(0.0, sv, None)
    expected = np.exp(-z1) / (1 + np.exp(-z1)) * np.sqrt(z1)
    assert expected > 0
    np.testing.assert_allclose(float(da[1]), expected, rtol=1e-12)

    params = sd.lift(problem, sv, sd.walsh_basis(2), (jnp.eye(2),))
    dw, _ = sd.FullGradientFlow(problem)(0.0, params, None)
    dsv = sd.project(problem, (dw, dw.T), sd.walsh_basis(2), (jnp.eye(2),))
    np.testing.assert_allclose(float(dsv[0][1]), expected, rtol=1e-12)


def test_fields_work_as_diffrax_terms():
    import diffrax

    problem = sd.UFM(4, 4)
    term = diffrax.ODETerm(sd.ReducedGradientFlow(problem, sd.walsh_basis(4)))
    sv = (jnp.ones(4), jnp.ones(4))
    out = term.vf(0.0, sv, None)
    assert jax.tree.structure(out) == jax.tree.structure(sv)
