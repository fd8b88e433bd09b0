"""Diagnostics of UFM states: `softmax_diag.metrics.loss`, `nc`, `leakage`, `lyapunov`, ...

Pure JAX functions of one state; `jax.vmap` them over a trajectory. Matrix versions take
`params = (W_L, ..., W_1)`; `spectral_*` versions take the singular values `sv` of a
spectral state and agree with the matrix versions on lifted states. Each function's
docstring gives its formula.
"""

from ._metrics import NC_KEYS as NC_KEYS
from ._metrics import accuracy as accuracy
from ._metrics import conserved as conserved
from ._metrics import conserved_drift as conserved_drift
from ._metrics import effective_rank as effective_rank
from ._metrics import leakage as leakage
from ._metrics import loss as loss
from ._metrics import lyapunov as lyapunov
from ._metrics import margins as margins
from ._metrics import nc as nc
from ._metrics import spectral_accuracy as spectral_accuracy
from ._metrics import spectral_conserved as spectral_conserved
from ._metrics import spectral_effective_rank as spectral_effective_rank
from ._metrics import spectral_loss as spectral_loss
from ._metrics import spectral_margin as spectral_margin
from ._metrics import spectral_nc as spectral_nc

__all__ = [
    "NC_KEYS",
    "accuracy",
    "conserved",
    "conserved_drift",
    "effective_rank",
    "leakage",
    "loss",
    "lyapunov",
    "margins",
    "nc",
    "spectral_accuracy",
    "spectral_conserved",
    "spectral_effective_rank",
    "spectral_loss",
    "spectral_margin",
    "spectral_nc",
]
