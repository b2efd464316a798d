"""The one-pass information terms (entropy, conditional entropy, least
confidence, margin, with validation) on the host C++ twin for CPU tensors."""

import math

from .modules import module_for, pool_arguments


def entropies(log_probs):
    """(entropy, conditional_entropy, invalid) of CPU log-probabilities [N, K, C] in one
    pass on the host C++ twin of the Triton information kernel (OpenMP): float32 [N]
    each, and the count of (n, k) rows that hold NaN or fail the normalisation bounds
    (the pass is the input's validation; 0 for valid input).

    fp32/fp16/bf16 and strided input are read as stored; float64 goes to the
    reference, the oracle's precision.
    """
    import torch

    if log_probs.dtype == torch.float64:
        from ..reference import entropies as reference_entropies

        return reference_entropies(log_probs)
    entropy, conditional, _, _, invalid = _information_terms(log_probs, confidence=False)
    return entropy, conditional, invalid


def uncertainties(log_probs):
    """:func:`kbald_kernels.reference.uncertainties` in the host twin's one pass
    (:func:`entropies`), which also keeps least confidence and margin."""
    import torch

    if log_probs.dtype == torch.float64:
        from ..reference import uncertainties as reference_uncertainties

        return reference_uncertainties(log_probs)
    return _information_terms(log_probs, confidence=True)


def _information_terms(log_probs, confidence):
    import torch

    from ..reference.normalisation import normalisation_bounds

    if log_probs.device.type != "cpu":
        raise ValueError(f"the host twin of the information kernel takes CPU tensors, got {log_probs.device}")
    module = module_for(log_probs.device)
    # Poisoned, so a point the loop fails to write cannot pass for a value.
    n = log_probs.shape[0]
    out = torch.full((4 if confidence else 2, n), math.nan, dtype=torch.float32)
    rows = [out.data_ptr() + 4 * n * row for row in range(out.shape[0])]  # the rows' addresses, no views
    invalid = module.entropies(*pool_arguments(log_probs), rows[0], rows[1], *(rows[2:] if confidence else (0, 0)),
                               *log_probs.shape, *normalisation_bounds(log_probs.dtype))
    if confidence:
        return out[0], out[1], out[2], out[3], invalid
    return out[0], out[1], None, None, invalid
