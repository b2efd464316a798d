"""The 2-BALD step and the one-against-all mutual information on the host C++
twin for CPU tensors."""

import math

from .modules import module_for, pool_arguments, takes_pair_pass


def _mutual_information_with(log_probs, entropy, pick, out):
    module_for(log_probs.device).mutual_information_with_pick(*pool_arguments(log_probs), entropy.data_ptr(), pick,
                                                               out.data_ptr(), *log_probs.shape)


def mutual_information_with_pick(log_probs, entropy, pick):
    """:func:`kbald_kernels.reference.mutual_information_with_pick` on the host C++
    module (the 2-BALD step's pass), for CPU tensors: float32 [N]. fp32/fp16/bf16 and
    strided input are read as stored; float64 goes to the reference."""
    import torch

    from .. import reference

    if not takes_pair_pass(log_probs, "mutual_information_with_pick"):
        return reference.mutual_information_with_pick(log_probs, entropy, pick)
    out = torch.empty(log_probs.shape[0], dtype=torch.float32)
    _mutual_information_with(log_probs, entropy.to(torch.float32).contiguous(), int(pick[0]), out)
    return out


def kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps):
    """:func:`kbald_kernels.reference.kbald_pairwise_steps` with each step's pass over
    the pool (I[Y_n; Y_newest] for every n) on the host C++ module, for CPU tensors.

    fp32/fp16/bf16 and strided input are read as stored; float64 goes to the
    reference.
    """
    import torch

    from .. import reference

    if not takes_pair_pass(log_probs, "the 2-BALD step"):
        return reference.kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps)
    entropy = entropy.to(torch.float32).contiguous()
    mutual_information = torch.empty(log_probs.shape[0], dtype=torch.float32)
    indices = torch.full((n_steps,), -1, dtype=torch.int64)
    scores = torch.full((n_steps,), math.nan, dtype=increment.dtype)
    mutual_information_with = _pool_pass(log_probs, entropy, n_steps, mutual_information)
    for slot in range(n_steps):
        if newest is not None:
            mutual_information_with(int(newest))
            increment -= mutual_information.to(increment.dtype)
        newest = int(torch.argmax(torch.where(selected, -torch.inf, increment)))
        selected[newest] = True
        indices[slot] = newest
        scores[slot] = increment[newest]
    return indices, scores


def _pool_pass(log_probs, entropy, n_steps, out):
    """pass(pick) writes I[Y_n; Y_pick] into ``out``. Over several steps, where the
    pool's float32 probabilities fit the workspace they are computed once (with the
    pass's own exponential: the same values) and each step reads them (the
    exponentials were most of a step); else each step reads the log-probabilities."""
    import torch

    from ..reference.workspace import workspace_bytes

    module = module_for(log_probs.device)
    if n_steps < 4 or 4 * log_probs.numel() > workspace_bytes():
        return lambda pick: _mutual_information_with(log_probs, entropy, pick, out)
    probs = torch.empty(log_probs.shape, dtype=torch.float32)
    module.probabilities(*pool_arguments(log_probs), probs.data_ptr(), *log_probs.shape)
    return lambda pick: module.mutual_information_with_pick_of_probs(probs.data_ptr(), entropy.data_ptr(), pick,
                                                                     out.data_ptr(), *log_probs.shape)



def add_triple_interactions(log_probs, entropy, pair_entropies, picks, triple):
    """:func:`kbald_kernels.reference.add_triple_interactions` with each three-way
    joint entropy H[Y_n, Y_newest, Y_t] on the host C++ module, for CPU tensors: the
    pool (read as stored) against the K × C² outer products of the two picks'
    probabilities, in chunks of the newest pick's classes under the workspace.
    float32 ``triple``; float64 goes to the reference."""
    import torch

    from .. import reference
    from ..reference.workspace import workspace_bytes

    if not takes_pair_pass(log_probs, "the 3-BALD triple update") or triple.dtype != torch.float32:
        return reference.add_triple_interactions(log_probs, entropy, pair_entropies, picks, triple)
    n_earlier = picks.shape[0] - 1
    if n_earlier == 0:
        return triple
    n_points, n_samples, n_classes = log_probs.shape
    module = module_for(log_probs.device)
    h = entropy.to(torch.float32)
    probs = log_probs.index_select(0, picks).to(torch.float32).exp()  # [earlier picks + newest, K, C]
    newest = probs[n_earlier]
    # Classes of the newest pick a chunk: its columns (and the module's padded copy of them) fit the workspace.
    chunk = max(1, min(n_classes, workspace_bytes() // (8 * n_samples * n_classes)))
    joint = torch.empty(n_points, dtype=torch.float32)
    part = torch.empty(n_points, dtype=torch.float32)
    picks_list = picks.tolist()
    for j in range(n_earlier):
        joint.zero_()
        for s0 in range(0, n_classes, chunk):
            columns = (newest[:, s0 : s0 + chunk, None] * probs[j][:, None, :]).reshape(n_samples, -1).contiguous()
            module.joint_entropy_with_columns(*pool_arguments(log_probs), columns.data_ptr(), columns.shape[1],
                                              part.data_ptr(), *log_probs.shape)
            joint += part
        triple += (h + h[picks_list[n_earlier]] + h[picks_list[j]] - pair_entropies[n_earlier] - pair_entropies[j]
                   - pair_entropies[j, picks_list[n_earlier]] + joint)
    return triple
