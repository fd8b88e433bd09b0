"""Exact cross-entropy training dynamics of the unconstrained features model, in JAX."""

import importlib.metadata

from . import metrics as metrics
from ._bases import FourierBasis as FourierBasis
from ._bases import WalshBasis as WalshBasis
from ._bases import fourier_basis as fourier_basis
from ._bases import spectral_basis as spectral_basis
from ._bases import walsh_basis as walsh_basis
from ._batch import solve_batch as solve_batch
from ._fields import FullGradientFlow as FullGradientFlow
from ._fields import ReducedGradientFlow as ReducedGradientFlow
from ._init import hadamard_init as hadamard_init
from ._init import lift as lift
from ._init import project as project
from ._init import random_frame as random_frame
from ._problem import UFM as UFM
from ._random_init import small_random_init as small_random_init
from ._random_init import spectral_projection as spectral_projection
from ._solve import solve_full as solve_full
from ._solve import solve_reduced as solve_reduced
from ._study import run_study as run_study
from ._study_init import initial_conditions as initial_conditions
from ._study_load import Study as Study
from ._study_load import load_study as load_study
from ._train import train_full as train_full
from ._train import train_reduced as train_reduced

try:
    __version__ = importlib.metadata.version("softmax_diag")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
