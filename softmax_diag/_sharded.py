r"""The engine of [`solve_batch`][softmax_diag.solve_batch]: padding, sharding, microbatches.

The batch axis is split over a 1D `jax.sharding.Mesh` of the devices with `jax.shard_map`:
each device solves its slice on its own, with no communication, in consecutive pieces of
`microbatch` samples (`jax.lax.map`; on CPU this keeps the solver's working set in cache).
A batch that does not fill the devices evenly is padded with copies of its last sample,
and trimmed after.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ._solve import _integrate

# State bytes per solve on a CPU device (the default microbatch is this over the bytes of
# one sample's state): Dopri8 keeps ~16 copies of the state, which then fit in L2. Measured
# (benchmarks/batch_throughput.py): 32 samples for the reduced ODE at K = 64 (1 KiB each)
# run 2.4-3.1x faster than one piece of 1024, and 1 sample for the full ODE at K = d = 64
# (64 KiB) runs 1.9x faster than pieces of 16.
CPU_STATE_BYTES = 32 * 1024
_AXIS = "batch"


def max_rms_norm(tree):
    """Error norm of the shared-step mode: the largest per-sample RMS norm.

    Every leaf has the batch on axis 0; the RMS runs over all other axes of all leaves.
    diffrax's default `rms_norm` would average over the batch instead, letting one
    sample's error hide behind the others.
    """
    leaves = jax.tree.leaves(tree)
    total = sum(jnp.sum(leaf.reshape(leaf.shape[0], -1) ** 2, axis=1) for leaf in leaves)
    size = sum(leaf[0].size for leaf in leaves)
    return jnp.sqrt(jnp.max(total) / size)


class _Batched(eqx.Module):
    """`field` on a batch (axis 0 of every leaf): one ODE for the whole batch."""

    field: eqx.Module

    def __call__(self, t, y, args):
        return jax.vmap(self.field, in_axes=(None, 0, None))(t, y, args)


def _shared_solve(field, y0, ts, rtol, atol, solver, max_steps):
    """One diffrax solve for a whole batch: shared steps, max over samples of the RMS norm."""
    sol = _integrate(_Batched(field), y0, ts, rtol, atol, solver, max_steps, False, False,
                     norm=max_rms_norm)
    size = jax.tree.leaves(y0)[0].shape[0]
    # Same layout as `jax.vmap` of a single solve: batch first, then time.
    ys = tuple(jnp.swapaxes(y, 0, 1) for y in sol.ys)
    sol = eqx.tree_at(lambda s: s.ys, sol, replace=None)
    sol = jax.tree.map(lambda x: jnp.broadcast_to(x, (size,) + jnp.shape(x)), sol)
    return eqx.tree_at(lambda s: s.ys, sol, replace=ys, is_leaf=lambda x: x is None)


def _layout(size: int, num_devices: int, microbatch, batching: str) -> tuple[int, int]:
    """`(num_micro, micro)`: every device solves `num_micro` slices of `micro` samples."""
    per_device = -(-size // num_devices)
    smallest = 1
    if batching == "vmap":
        # XLA compiles a batch of one like an unbatched solve, whose roundings differ in
        # the last bit: two samples or more per slice keep every sample's result
        # independent of the batch size and the device count.
        smallest = 2
    num_micro = 1 if microbatch is None else -(-per_device // max(microbatch, smallest))
    micro = max(-(-per_device // num_micro), smallest)  # balanced: little padding
    return num_micro, micro


@eqx.filter_jit
def _run(field, y0, ts, rtol, atol, solver, max_steps, batching, devices, microbatch):
    size = jax.tree.leaves(y0)[0].shape[0]
    num_micro, micro = _layout(size, len(devices), microbatch, batching)
    pad = num_micro * micro * len(devices) - size
    if pad:  # copies of the last sample: valid inputs, and neutral for the shared norm
        y0 = jax.tree.map(
            lambda x: jnp.concatenate([x, jnp.broadcast_to(x[-1:], (pad,) + x.shape[1:])]), y0
        )

    def solve_slice(y0, ts, rtol, atol):
        if batching == "vmap":
            return jax.vmap(
                lambda y: _integrate(field, y, ts, rtol, atol, solver, max_steps, False, False)
            )(y0)
        return _shared_solve(field, y0, ts, rtol, atol, solver, max_steps)

    def local(y0, ts, rtol, atol):
        if num_micro == 1:
            return solve_slice(y0, ts, rtol, atol)
        # One slice after the other (a scan): each slice's working set stays in cache.
        slices = jax.tree.map(lambda x: x.reshape((num_micro, micro) + x.shape[1:]), y0)
        sol = jax.lax.map(lambda y: solve_slice(y, ts, rtol, atol), slices)
        return jax.tree.map(lambda x: x.reshape((num_micro * micro,) + x.shape[2:]), sol)

    mesh = Mesh(np.asarray(devices), (_AXIS,))
    spec, replicated = PartitionSpec(_AXIS), PartitionSpec()
    sol = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(spec, replicated, replicated, replicated),
        out_specs=spec,
        check_vma=False,
    )(y0, ts, rtol, atol)
    return jax.tree.map(lambda x: x[:size], sol) if pad else sol
