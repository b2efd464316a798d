"""Launchers of the compiled modules: the host C++ twins on CPU tensors and the CUDA
kernel on CUDA tensors, one module per op, named as in ``triton/``; ``modules``
loads the compiled modules."""

from .epig import epig
from .information_terms import entropies, uncertainties
from .joint_entropy import accumulate_joint_entropy, emulate_joint_entropy_kernel, joint_entropy
from .kbald_step import add_triple_interactions, kbald_pairwise_steps, mutual_information_with_pick
from .kmeanspp_step import gather_rows, kmeanspp_candidate, kmeanspp_steps, min_squared_distances
from .modules import cuda_module, host_module, module_for, pool_arguments, row_entropy
from .pairwise_mutual_information import pairwise_mutual_information

__all__ = ["accumulate_joint_entropy", "add_triple_interactions", "cuda_module", "emulate_joint_entropy_kernel",
           "entropies", "epig", "gather_rows", "host_module", "joint_entropy", "kbald_pairwise_steps",
           "kmeanspp_candidate", "kmeanspp_steps", "min_squared_distances", "module_for",
           "mutual_information_with_pick", "pairwise_mutual_information", "pool_arguments", "row_entropy",
           "uncertainties"]
