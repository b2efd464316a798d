"""Pure-torch implementations of every op: the CPU fallback and the test oracle.

They follow DESIGN.md's math literally, compute in float64 for float64 input and in
float32 otherwise, and work in chunks under a workspace budget
(:func:`kbald_kernels.reference.workspace.workspace_bytes`) so memory stays bounded.
They assume validated input; the public API in :mod:`kbald_kernels` validates.
"""

from .information import (
    add_triple_interactions,
    argmax_unselected,
    bald,
    conditional_entropy,
    entropies,
    entropy,
    epig,
    kbald_pairwise_steps,
    mutual_information_with_pick,
    pairwise_mutual_information,
    triple_interaction,
    uncertainties,
)
from .joint_entropy import (
    Configurations,
    accumulate_joint_entropy,
    configurations_entropy,
    empty_configurations,
    extend_configurations,
    joint_entropy,
)
from .kmeanspp import (
    DenseEmbeddings,
    FactoredEmbeddings,
    gumbel_noise,
    kmeanspp_step,
    kmeanspp_steps,
    min_squared_distances,
    philox4x32,
)

__all__ = [
    "add_triple_interactions",
    "Configurations",
    "DenseEmbeddings",
    "FactoredEmbeddings",
    "accumulate_joint_entropy",
    "argmax_unselected",
    "bald",
    "conditional_entropy",
    "configurations_entropy",
    "empty_configurations",
    "entropies",
    "entropy",
    "epig",
    "extend_configurations",
    "gumbel_noise",
    "joint_entropy",
    "kbald_pairwise_steps",
    "kmeanspp_step",
    "kmeanspp_steps",
    "min_squared_distances",
    "mutual_information_with_pick",
    "pairwise_mutual_information",
    "philox4x32",
    "triple_interaction",
    "uncertainties",
]
