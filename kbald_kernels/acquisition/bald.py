"""Top-k BALD and the greedy k-BALD family (Kirsch 2023)."""

import math

import torch

from ..backends import implementation
from ..selection import Selection
from ..validation import check_batch_size, check_log_probs, to_output


def select_bald(log_probs, batch_size, *, backend=None):
    """The ``batch_size`` points with the highest BALD score, best first (ties: smaller index).

    Returns ``Selection(indices, scores)``; scores are the cumulative BALD sum, the
    batch's value when points are treated as independent.
    """
    t, np_in = check_log_probs(log_probs)
    size = check_batch_size(batch_size, t.shape[0])
    scores = implementation("bald", backend, t.device, strict=False)(t)
    values, indices = torch.sort(scores, descending=True, stable=True)
    return Selection(to_output(indices[:size], np_in), to_output(values[:size].cumsum(0), np_in))


def select_kbald(log_probs, batch_size, *, order=2, backend=None):
    """Greedy k-BALD: BatchBALD's joint mutual information by inclusion–exclusion.

    The increment of candidate i given the selected set S is
    ``bald[i] - Σ_{s∈S} I[Y_i; Y_s]`` (``order=2``) ``+ Σ_{s<t∈S} I[Y_i; Y_s; Y_t]``
    (``order=3``); ``order=1`` is top-k BALD. Each step takes the largest increment
    (ties: smaller index). Scores are the cumulative k-BALD value of the batch.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if order == 1:
        return select_bald(log_probs, batch_size, backend=backend)
    t, np_in = check_log_probs(log_probs)
    size = check_batch_size(batch_size, t.shape[0])
    device = t.device
    entropy = implementation("entropy", backend, device, strict=False)(t)
    increment = implementation("bald", backend, device, strict=False)(t).clone()
    mutual_information = implementation("pairwise_mutual_information", backend, device, strict=False)
    joint_entropy = implementation("joint_entropy", backend, device, strict=False)

    selected = torch.zeros(t.shape[0], dtype=torch.bool, device=device)
    indices, totals = [], []
    total = torch.zeros((), dtype=increment.dtype, device=device)
    pair_entropies = []  # H[Y_n, Y_t] for every earlier pick t (3-BALD)
    for step in range(size):
        i = int(torch.argmax(torch.where(selected, -math.inf, increment)))
        total = total + increment[i]
        indices.append(i)
        totals.append(total)
        selected[i] = True
        if step == size - 1:
            break
        mi_with_i = mutual_information(t, t[i : i + 1])[:, 0]
        increment -= mi_with_i
        if order == 3:
            pair_with_i = entropy + entropy[i] - mi_with_i
            for earlier, pair_with_earlier in zip(indices[:-1], pair_entropies):
                triple_joint = joint_entropy(t, [i, earlier], None, None)
                increment += (entropy + entropy[i] + entropy[earlier] - pair_with_i - pair_with_earlier
                              - pair_with_earlier[i] + triple_joint)
            pair_entropies.append(pair_with_i)
    index_tensor = torch.tensor(indices, dtype=torch.int64, device=device)
    return Selection(to_output(index_tensor, np_in), to_output(torch.stack(totals), np_in))
