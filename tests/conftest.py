"""Strict JAX settings for every test (the library itself never flips global config).

float64 on, strict dtype promotion, rank promotion raises, and four simulated CPU
devices for the sharding tests. XLA_FLAGS must be set before JAX initialises.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """`getkey()` returns a fresh PRNG key on each call, deterministic per test."""
    counter = iter(range(10**6))
    base = jax.random.PRNGKey(20261204)
    return lambda: jax.random.fold_in(base, next(counter))
