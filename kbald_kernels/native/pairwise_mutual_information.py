"""Pairwise mutual information blocks on the host C++ twin for CPU tensors."""

from .information_terms import entropies
from .modules import module_for, pool_arguments, takes_pair_pass

# Points of a and of b (a multiple of 16: a lane each) per matrix product: joints of
# 64·C × C·128 floats (3.3 MB at C = 10, 14 MB at C = 21) stay in the last-level cache.
BLOCK_A, BLOCK_B = 64, 128


def by_matrix_products(samples, classes):
    """Whether the joints come from matrix products (torch's GEMM) and their
    entropies from the host module, not from the host pair pass. The pair pass runs
    a pick's classes padded to 16, 32 or 64 lanes; where a third or more of them idle
    the products win, though they write and read C² joints a pair (at small K the
    product is that write). Measured on 256 × 60 000/(K·C)·10 points, 2 cores:
    C = 2, 3 at K = 4-100: 1.6-9.4x; C = 10: 1.2-1.8x from K = 32, 1.0-1.2x at K = 4-20
    (and even at 1 000 × 100, K = 20); C = 17: 1.5-1.8x; C = 16, 32, 40: 0.2-0.85x."""
    padded = 16 if classes <= 16 else 32  # past 32 classes neither condition holds
    return 3 * classes <= padded or (3 * classes <= 2 * padded and samples >= 32)


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
    if by_matrix_products(*a.shape[1:]):
        return _by_matrix_products(a, b, entropy_a, entropy_b)
    out = torch.empty((a.shape[0], b.shape[0]), dtype=torch.float32)
    module_for(a.device).pairwise_mutual_information(
        *pool_arguments(a), entropy_a.data_ptr(), b.data_ptr(), *b.stride(), entropy_b.data_ptr(), out.data_ptr(),
        a.shape[0], b.shape[0], *a.shape[1:])
    return out


def _by_matrix_products(a, b, entropy_a, entropy_b):
    """The same from joints J = mean_k p_a[k, c]·p_b[k, d] of blocks of pairs by one
    matrix product each, [64·C, K] × [K, C·128], whose lanes are all used. The
    probabilities come from the host module's exponential (the pair pass's own), read
    from the pools as stored; the products and their entropies reuse one buffer each."""
    import torch

    from ..reference.workspace import workspace_bytes

    module = module_for(a.device)
    samples, classes = a.shape[1:]
    out = torch.empty((a.shape[0], b.shape[0]), dtype=torch.float32)

    def probabilities(x):  # float32 [points, K, C]
        probs = torch.empty(x.shape, dtype=torch.float32)
        module.probabilities(*pool_arguments(x), probs.data_ptr(), *x.shape)
        return probs

    def rows_of_a(start, stop):  # [points·C, K]: the probabilities over K, 1/K folded in
        return (probabilities(a[start:stop]).transpose(1, 2) / samples).reshape(-1, samples)

    # a's probabilities held across b's blocks where they fit a quarter of the workspace.
    whole_a = rows_of_a(0, a.shape[0]) if 4 * a.numel() * 4 <= workspace_bytes() else None
    block_a = min(BLOCK_A, a.shape[0])
    joints = torch.empty((block_a * classes, classes * BLOCK_B), dtype=torch.float32)
    entropy = torch.empty((block_a, BLOCK_B), dtype=torch.float32)
    for b0 in range(0, b.shape[0], BLOCK_B):
        points = min(BLOCK_B, b.shape[0] - b0)
        columns = (points + 15) // 16 * 16
        probs_b = torch.zeros((samples, classes, columns), dtype=torch.float32)
        probs_b[:, :, :points] = probabilities(b[b0 : b0 + points]).permute(1, 2, 0)
        probs_b = probs_b.view(samples, classes * columns)
        for a0 in range(0, a.shape[0], BLOCK_A):
            a1 = min(a.shape[0], a0 + BLOCK_A)
            rows = whole_a[a0 * classes : a1 * classes] if whole_a is not None else rows_of_a(a0, a1)
            block = joints.view(-1)[: rows.shape[0] * probs_b.shape[1]].view(rows.shape[0], probs_b.shape[1])
            torch.matmul(rows, probs_b, out=block)
            h = entropy.view(-1)[: (a1 - a0) * columns].view(a1 - a0, columns)
            module.joint_entropies(block.data_ptr(), h.data_ptr(), a1 - a0, columns, classes)
            out[a0:a1, b0 : b0 + points] = entropy_a[a0:a1, None] + entropy_b[None, b0 : b0 + points] - h[:, :points]
    return out
