"""Input checks shared by the public functions.

Three layers, as in diffrax: shapes, dtypes and configuration raise `ValueError` /
`TypeError` at trace time; values (NaN, negative times) raise `ValueError` when the
input is concrete and go through `eqx.error_if` when it is traced (under `jit` or
`vmap`); solver outcomes are diffrax's own `Solution.result`.
"""

import operator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

ENABLE_X64 = 'jax.config.update("jax_enable_x64", True)'


def is_concrete(x) -> bool:
    """True when `x` holds values we can inspect now (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def check_int(name: str, value, *, minimum: int) -> int:
    """A Python integer (not a bool) at least `minimum`."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an integer, got the bool {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"`{name}` must be an integer, got {value!r} of type "
            f"{type(value).__name__}."
        ) from None
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    return value


def as_float_array(name: str, x):
    """Converts to a floating JAX array; integers become the default float dtype."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"`{name}` must be an array of numbers, got {x!r}.")
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"`{name}` must be an array of numbers: {err}") from None
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(f"`{name}` must be real, got dtype {arr.dtype}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_finite(name: str, x):
    """Refuses NaN/inf: `ValueError` now if concrete, `eqx.error_if` if traced."""
    message = (
        f"`{name}` contains NaN or inf; pass finite initial values "
        "(check how they were generated)."
    )
    if is_concrete(x):  # host check: `x` may be a constant captured inside a jit
        if not np.all(np.isfinite(np.asarray(x))):
            raise ValueError(message)
        return x
    return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), message)


def check_shape(name: str, x, shape: tuple[int, ...], hint: str = "") -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(
            f"`{name}` has shape {tuple(x.shape)} but this problem needs {tuple(shape)}"
            + (f" ({hint})" if hint else "")
            + "."
        )


def check_times(ts):
    """Save times: a non-empty 1D array, finite, `>= 0`, non-decreasing, not all 0.

    The solve runs from `t0 = 0` to `t1 = ts[-1]`.
    """
    ts = as_float_array("ts", ts)
    if ts.ndim != 1 or ts.shape[0] == 0:
        raise ValueError(
            f"`ts` must be a non-empty 1D array of save times, got shape {ts.shape}; "
            "for example `ts = jnp.linspace(0.0, 100.0, 11)`."
        )
    if is_concrete(ts):
        host = np.asarray(ts)
        if not np.all(np.isfinite(host)):
            raise ValueError("`ts` contains NaN or inf; pass finite save times.")
        if host[0] < 0:
            raise ValueError(
                f"`ts` must be >= 0 (the flow starts at t0 = 0), got ts[0] = {host[0]}."
            )
        if np.any(np.diff(host) < 0):
            raise ValueError("`ts` must be sorted in non-decreasing order; sort it first.")
        if host[-1] <= 0:
            raise ValueError(
                "`ts[-1]` must be > 0: the solve runs from t0 = 0 to t1 = ts[-1]."
            )
        return ts
    bad = (
        ~jnp.all(jnp.isfinite(ts))
        | (ts[0] < 0)
        | jnp.any(jnp.diff(ts) < 0)
        | (ts[-1] <= 0)
    )
    return eqx.error_if(
        ts, bad, "`ts` must be finite, >= 0, non-decreasing, with ts[-1] > 0."
    )


def check_tolerances(rtol, atol, dtype):
    """Positive tolerances the dtype can deliver; returned as arrays of `dtype`.

    Arrays (not Python floats) so that new values do not recompile the solve.
    """
    floor = 8 * float(jnp.finfo(dtype).eps)  # float32: ~1e-6, float64: ~2e-15
    out = []
    for name, tol in (("rtol", rtol), ("atol", atol)):
        tol = as_float_array(name, tol)
        if tol.ndim != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {tol.shape}.")
        if is_concrete(tol):
            value = float(tol)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a positive number, got {value}.")
            if name == "rtol" and value < floor:
                raise ValueError(
                    f"`rtol={value:g}` is tighter than {dtype} can deliver "
                    f"(about {floor:.1e}). Use float64 for tight tolerances: call "
                    f"`{ENABLE_X64}` at the start of your program and build the "
                    "initial values in float64, or loosen `rtol`."
                )
        else:
            tol = eqx.error_if(tol, ~(tol > 0), f"`{name}` must be positive.")
        out.append(tol.astype(dtype))
    return tuple(out)


def common_dtype(name: str, leaves) -> jnp.dtype:
    dtypes = {leaf.dtype for leaf in leaves}
    if len(dtypes) != 1:
        raise TypeError(
            f"every array in `{name}` must have the same dtype, got "
            f"{sorted(str(d) for d in dtypes)}; cast them to one (float64 advised)."
        )
    return dtypes.pop()
