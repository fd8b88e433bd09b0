"""The Walsh basis: fast transform vs the dense Sylvester matrix, group-circulant maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import softmax_diag as sd
from softmax_diag._bases import fwht

POWERS = [2**m for m in range(11)]  # K = 1 .. 1024


@pytest.mark.parametrize("K", POWERS)
def test_fwht_matches_dense_hadamard(K, getkey):
    dense = scipy.linalg.hadamard(K).astype(np.float64)
    x = np.asarray(jax.random.normal(getkey(), (3, K)))
    # Entries of H x are sums of K terms of size ~1: round-off ~ K eps.
    np.testing.assert_allclose(np.asarray(fwht(jnp.asarray(x))), x @ dense.T, atol=1e-13 * K)


@pytest.mark.parametrize("K", [1, 2, 8, 64, 256])
def test_walsh_matrix_is_orthonormal_sylvester(K):
    basis = sd.walsh_basis(K)
    q = np.asarray(basis.matrix)
    np.testing.assert_allclose(q, scipy.linalg.hadamard(K) / np.sqrt(K), atol=1e-15)
    np.testing.assert_allclose(q.T @ q, np.eye(K), atol=1e-13)
    np.testing.assert_allclose(q[:, 0], np.full(K, 1 / np.sqrt(K)), atol=1e-15)
    assert basis.pairs == ()


@pytest.mark.parametrize("K", [4, 32])
def test_transforms_match_dense_matrix(K, getkey):
    basis = sd.walsh_basis(K)
    q = np.asarray(basis.matrix)
    x = jax.random.normal(getkey(), (2, 5, K))
    np.testing.assert_allclose(basis.transform(x), np.asarray(x) @ q, atol=1e-13)
    np.testing.assert_allclose(basis.inverse(x), np.asarray(x) @ q.T, atol=1e-13)
    np.testing.assert_allclose(basis.inverse(basis.transform(x)), x, atol=1e-13)


@pytest.mark.parametrize("K", [2, 8, 32])
def test_column_and_spectrum_describe_xor_circulant_matrices(K, getkey):
    basis = sd.walsh_basis(K)
    q = np.asarray(basis.matrix)
    z = np.asarray(jax.random.normal(getkey(), (K,)))
    matrix = q @ np.diag(z) @ q.T
    phi = np.asarray(basis.column(jnp.asarray(z)))
    xor = np.bitwise_xor.outer(np.arange(K), np.arange(K))
    np.testing.assert_allclose(matrix, phi[xor], atol=1e-14)  # entries phi(j XOR k)
    np.testing.assert_allclose(basis.spectrum(jnp.asarray(phi)), z, atol=1e-13)


def test_transform_is_jit_and_vmap_friendly(getkey):
    basis = sd.walsh_basis(16)
    x = jax.random.normal(getkey(), (7, 16))
    looped = jnp.stack([basis.transform(row) for row in x])
    np.testing.assert_allclose(jax.jit(jax.vmap(basis.transform))(x), looped, atol=1e-15)


def test_reduced_field_has_no_dense_product():
    """The reduced field is transforms only: no matrix product in its jaxpr."""
    problem = sd.UFM(64, 64)
    field = sd.ReducedGradientFlow(problem, sd.walsh_basis(64))
    sv = (jnp.ones(64), jnp.ones(64))
    jaxpr = jax.make_jaxpr(field)(0.0, sv, None)
    primitives = _primitives(jaxpr.jaxpr)
    # The walk itself can fail: it finds a product hidden inside a nested `jit`.
    hidden = jax.make_jaxpr(lambda a: jax.jit(lambda b: b @ b)(a) + 1.0)(jnp.ones((2, 2)))
    assert "dot_general" in _primitives(hidden.jaxpr)
    assert not primitives & {"dot_general", "conv_general_dilated"}, primitives


def _primitives(jaxpr) -> set[str]:
    """Every primitive in `jaxpr`, inside nested jaxprs too (`fwht` is its own `jit`)."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for param in eqn.params.values():
            for inner in param if isinstance(param, (list, tuple)) else (param,):
                if isinstance(inner, jax.extend.core.ClosedJaxpr):
                    names |= _primitives(inner.jaxpr)
                elif isinstance(inner, jax.extend.core.Jaxpr):
                    names |= _primitives(inner)
    return names


@pytest.mark.parametrize("K", [0, 3, 12, 1000])
def test_walsh_refuses_non_powers_of_two(K):
    with pytest.raises(ValueError, match="fourier_basis|at least 1"):
        sd.walsh_basis(K)


def test_spectral_basis_picks_walsh_for_powers_of_two():
    assert isinstance(sd.spectral_basis(16), sd.WalshBasis)
    assert isinstance(sd.spectral_basis(12), sd.FourierBasis)
