"""The kernels the acquisitions chain, as custom ops ``torch.ops.kbald_kernels.<op>``.

Each dispatches on ``backend`` and the input's device
(:func:`kbald_kernels.backends.implementation`; ``strict=False`` falls back per op
as "auto" would) and returns what that implementation returns, as fresh tensors.
They take validated input, as the kernels do: the public functions validate.
Ops that update running state in place (increments, selected flags, distances)
declare it in their schema. The greedy loops over log-probabilities call these
ops for their steps; the validating first pass of every call and the k-means++
orderings (whose embeddings objects keep the factored norms across steps) call
the same implementations directly, so ``entropies``, ``uncertainties`` and the
two k-means++ ops are entry points for other libraries.
"""

from typing import Optional

import torch

from .backends import implementation
from .library import custom_op, fake_per_point, fresh, leading, result_dtype
from .reference import DenseEmbeddings, FactoredEmbeddings


def _fake_terms(count):
    def fake(log_probs, backend=None, strict=True):
        terms = [log_probs.new_empty((leading(log_probs),), dtype=result_dtype(log_probs.dtype))
                 for _ in range(count)]
        return (*terms, log_probs.new_empty((), dtype=torch.bool))

    return fake


def _flag(invalid, device):
    """The validation flag as a 0-dim bool tensor on ``device`` (kernels give a device tensor or a count)."""
    return (torch.as_tensor(invalid) != 0).to(device)


@custom_op("entropies", _fake_terms(2))
def entropies(log_probs: torch.Tensor, backend: Optional[str] = None,
              strict: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(entropy, conditional_entropy, invalid) in the one validating pass; ``invalid``
    is true when some (n, k) row holds NaN or +inf or is not normalised."""
    entropy, conditional, invalid = implementation("entropies", backend, log_probs.device, strict)(log_probs)
    return fresh((entropy, conditional, _flag(invalid, log_probs.device)), (log_probs,))


@custom_op("uncertainties", _fake_terms(4))
def uncertainties(log_probs: torch.Tensor, backend: Optional[str] = None, strict: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(entropy, conditional_entropy, least_confidence, margin, invalid) in the same pass."""
    *terms, invalid = implementation("uncertainties", backend, log_probs.device, strict)(log_probs)
    return fresh((*terms, _flag(invalid, log_probs.device)), (log_probs,))


@custom_op("mutual_information_with_pick", fake_per_point)
def mutual_information_with_pick(log_probs: torch.Tensor, entropy: torch.Tensor, pick: torch.Tensor,
                                 backend: Optional[str] = None, strict: bool = True) -> torch.Tensor:
    """I[Y_n; Y_pick] for every pool point n (``pick``: an int64 [1] tensor; ``entropy``: H[Y_n])."""
    fn = implementation("mutual_information_with_pick", backend, log_probs.device, strict)
    return fresh((fn(log_probs, entropy, pick).to(result_dtype(log_probs.dtype)),), (log_probs, entropy, pick))[0]


def _fake_steps(state, n_steps):
    """Fake (indices, scores) of ``n_steps`` greedy steps whose scores are in ``state``'s dtype."""
    return state.new_empty((n_steps,), dtype=torch.int64), state.new_empty((n_steps,))


@custom_op("kbald_pairwise_steps",
           lambda log_probs, entropy, increment, selected, newest, n_steps, *args, **kwargs:
           _fake_steps(increment, n_steps), mutates_args=("increment", "selected"))
def kbald_pairwise_steps(log_probs: torch.Tensor, entropy: torch.Tensor, increment: torch.Tensor,
                         selected: torch.Tensor, newest: Optional[int], n_steps: int, backend: Optional[str] = None,
                         strict: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_steps`` fused 2-BALD steps from the running ``increment`` and ``selected``
    flags (both updated in place); (indices, each pick's increment)."""
    fn = implementation("kbald_pairwise_steps", backend, log_probs.device, strict)
    out = fn(log_probs, entropy, increment, selected, newest, n_steps)
    return fresh(out, (log_probs, entropy, increment, selected))


@custom_op("add_triple_interactions", lambda *args, **kwargs: None, mutates_args=("triple",))
def add_triple_interactions(log_probs: torch.Tensor, entropy: torch.Tensor, pair_entropies: torch.Tensor,
                            picks: torch.Tensor, triple: torch.Tensor, backend: Optional[str] = None,
                            strict: bool = True) -> None:
    """``triple[n] += Σ_j I[Y_n; Y_newest; Y_{picks[j]}]`` over the earlier picks (the
    last of ``picks`` is the newest; ``pair_entropies[j]`` holds H[Y_n, Y_{picks[j]}])."""
    implementation("add_triple_interactions", backend, log_probs.device, strict)(
        log_probs, entropy, pair_entropies, picks, triple)


@custom_op("accumulate_joint_entropy", lambda weights, alpha, log_probs, *args, **kwargs: fake_per_point(log_probs))
def accumulate_joint_entropy(weights: torch.Tensor, alpha: torch.Tensor, log_probs: torch.Tensor,
                             backend: Optional[str] = None, strict: bool = True) -> torch.Tensor:
    """BatchBALD's ``Σ_m alpha[m]·H(q[m, i, :])``, ``q[m, i] = weights[m] @ exp(log_probs[i])``; [N]."""
    fn = implementation("accumulate_joint_entropy", backend, log_probs.device, strict)
    return fresh((fn(weights, alpha, log_probs).to(result_dtype(log_probs.dtype)),), (weights, alpha, log_probs))[0]


def embeddings_of(parts):
    """Dense embeddings (one tensor) or BADGE factors (features, residuals) as the kernels take them."""
    return DenseEmbeddings(parts[0]) if len(parts) == 1 else FactoredEmbeddings(*parts)


@custom_op("kmeanspp_steps",
           lambda embeddings, min_distances, selected, newest, seed, first_step, n_steps, *args, **kwargs:
           _fake_steps(min_distances, n_steps), mutates_args=("min_distances", "selected"))
def kmeanspp_steps(embeddings: list[torch.Tensor], min_distances: torch.Tensor, selected: torch.Tensor,
                   newest: Optional[int], seed: int, first_step: int, n_steps: int, pick: str = "sample",
                   backend: Optional[str] = None, strict: bool = True,
                   pool_indices: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_steps`` fused k-means++ (``pick="sample"``) or k-center (``"argmax"``) steps
    over dense ``[x]`` or factored ``[features, residuals]`` embeddings: distance to the
    newest center, running-min update (``min_distances``, ``selected`` in place), next
    pick; (rows, each pick's distance). ``seed``: the 64-bit Philox key as a signed int64.
    ``pool_indices`` (int64, ascending): each row's index in a pool it was gathered from,
    which keys its draws. (Not ``mode``: torch's fake-tensor dispatch takes that keyword for itself.)"""
    fn = implementation("kmeanspp_steps", backend, min_distances.device, strict)
    out = fn(embeddings_of(embeddings), min_distances, selected, newest, seed % 2**64, first_step, n_steps, pick,
             pool_indices)
    return fresh(out, (*embeddings, min_distances, selected, pool_indices))


def _fake_min_distances(embeddings, centers, *args, **kwargs):
    return fake_per_point(embeddings[0])


@custom_op("min_squared_distances", _fake_min_distances)
def min_squared_distances(embeddings: list[torch.Tensor], centers: list[torch.Tensor],
                          backend: Optional[str] = None, strict: bool = True) -> torch.Tensor:
    """min over ``centers`` (embeddings of the same kind) of every pool point's squared distance; [N]."""
    fn = implementation("min_squared_distances", backend, embeddings[0].device, strict)
    out = fn(embeddings_of(embeddings), embeddings_of(centers)).to(result_dtype(embeddings[0].dtype))
    return fresh((out,), (*embeddings, *centers))[0]
