"""Pairwise mutual information blocks on the host C++ twin for CPU tensors."""

from .information_terms import entropies
from .modules import module_for, pool_arguments, takes_pair_pass


def pairwise_mutual_information(a, b=None, entropies_ab=None):
    """:func:`kbald_kernels.reference.pairwise_mutual_information` on the host C++
    module for CPU tensors: float32 [Na, Nb], both pools read as stored. float64 goes
    to the reference."""
    import torch

    from .. import reference

    if not takes_pair_pass(a, "pairwise_mutual_information"):
        return reference.pairwise_mutual_information(a, b, entropies_ab)
    b = a if b is None else b.to(a.dtype)
    if entropies_ab is None:
        entropies_ab = (entropies(a)[0], entropies(b)[0])
    entropy_a, entropy_b = (h.to(torch.float32).contiguous() for h in entropies_ab)
    out = torch.empty((a.shape[0], b.shape[0]), dtype=torch.float32)
    module_for(a.device).pairwise_mutual_information(
        *pool_arguments(a), entropy_a.data_ptr(), b.data_ptr(), *b.stride(), entropy_b.data_ptr(), out.data_ptr(),
        a.shape[0], b.shape[0], *a.shape[1:])
    return out
