"""EPIG on the host C++ twin for CPU tensors."""

import math

from .modules import module_for, pool_arguments


def epig(log_probs, target_log_probs, entropies_pt, target_weights):
    """:func:`kbald_kernels.reference.epig` on the host C++ module for CPU tensors:
    float32 [N], each pool point read once (as stored) against every target, in a
    fixed order; any C. float64 goes to the reference."""
    import torch

    from .. import reference

    if log_probs.device.type != "cpu":
        raise ValueError(f"the host twin of epig takes CPU tensors, got {log_probs.device}")
    if log_probs.dtype == torch.float64:
        return reference.epig(log_probs, target_log_probs, entropies_pt, target_weights)
    entropy, target_entropy, weights, targets = (
        t.to(torch.float32).contiguous() for t in (*entropies_pt, target_weights, target_log_probs))
    out = torch.full((log_probs.shape[0],), math.nan, dtype=torch.float32)
    module_for(log_probs.device).epig(*pool_arguments(log_probs), entropy.data_ptr(), targets.data_ptr(),
                                       target_entropy.data_ptr(), weights.data_ptr(), targets.shape[0],
                                       out.data_ptr(), *log_probs.shape)
    return out
