"""kbald_kernels: fast Bayesian batch active learning.

Predictions are log-probabilities ``[N, K, C]`` (pool points, posterior samples,
classes); embeddings are dense ``[N, D]`` or BADGE factors ``(features, residuals)``.
Every op takes ``backend="auto" | "triton" | "cuda" | "torch"`` (default from the
``KBALD_BACKEND`` environment variable, else "auto"); every acquisition returns
``Selection(indices, scores)`` on the input's device (numpy in, numpy out) and takes
``candidates=`` (pool indices or a mask; :func:`candidate_subset` builds them) to
choose among some pool points only.
"""

from . import kernel_ops  # registers the kernels' ops  # noqa: F401
from .acquisition.bald import (
    DynamicSelection,
    select_bald,
    select_conservative_bald,
    select_kbald,
    select_kbald_dynamic,
    select_stochastic_bald,
)
from .acquisition.batchbald import select_batchbald
from .acquisition.epig import select_epig
from .acquisition.kmeanspp import KMeansPPOrdering, badge_factors, kmeanspp, select_badge, select_coreset
from .acquisition.uncertainty import candidate_subset, select_uncertainty
from .backends import BACKEND_ENV, BackendStatus, BackendUnavailableError, KernelFallbackWarning, available_backends
from .conversion import as_log_probs
from .information import (
    bald,
    conditional_entropy,
    entropy,
    epig,
    joint_entropy,
    least_confidence,
    margin,
    pairwise_mutual_information,
    triple_interaction,
)
from .selection import Selection

__version__ = "0.1.0"

__all__ = [
    "BACKEND_ENV",
    "BackendStatus",
    "BackendUnavailableError",
    "DynamicSelection",
    "KernelFallbackWarning",
    "KMeansPPOrdering",
    "Selection",
    "as_log_probs",
    "available_backends",
    "badge_factors",
    "bald",
    "candidate_subset",
    "conditional_entropy",
    "entropy",
    "epig",
    "joint_entropy",
    "kmeanspp",
    "least_confidence",
    "margin",
    "pairwise_mutual_information",
    "select_badge",
    "select_bald",
    "select_batchbald",
    "select_conservative_bald",
    "select_coreset",
    "select_epig",
    "select_kbald",
    "select_kbald_dynamic",
    "select_stochastic_bald",
    "select_uncertainty",
    "triple_interaction",
]
