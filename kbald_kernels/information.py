"""Public information-theoretic ops over log-probabilities [N, K, C].

Each is a custom op (:mod:`kbald_kernels.library`) that validates its input,
picks a backend (:mod:`kbald_kernels.backends`) and returns a tensor on the
input's device (numpy in, numpy out). Results are float64 for float64 input and
float32 otherwise.
"""

from typing import Optional

import torch

from .backends import implementation
from .library import (custom_op, fake_per_point, fresh, index_argument, integer_argument, is_numpy, leading,
                      optional_tensor, result_dtype, seed_argument, seeded_generator, tensor_argument)
from .validation import (as_tensor, check_indices, check_log_probs, check_log_probs_form, check_positive_int,
                         check_same_device, confirm_log_probs, to_output)


def validated_entropies(t, backend, strict=True, name="log_probs", rows=None):
    """(entropy, conditional_entropy) of log-probabilities ``t`` [N, K, C] whose form
    is checked (:func:`~kbald_kernels.validation.check_log_probs_form`): one pass that
    computes both and validates the values, whose flag is read once here. ``rows``:
    when ``t`` holds candidate rows of the caller's pool, their pool indices, which
    an error names."""
    return _validated("entropies", t, backend, strict, name, rows)


def validated_uncertainties(t, backend, strict=True, name="log_probs", rows=None):
    """(entropy, conditional_entropy, least_confidence, margin) in the one validating
    pass of :func:`validated_entropies`."""
    return _validated("uncertainties", t, backend, strict, name, rows)


def _validated(op, t, backend, strict, name, rows):
    # The implementation itself, not the ``entropies`` op: this pass opens every call,
    # and a nested dispatch (with its fresh copies) would double a small pool's cost.
    *terms, invalid = implementation(op, backend, t.device, strict)(t)
    confirm_log_probs(t, invalid, name, rows)
    return tuple(terms)


def entropy(log_probs, *, backend=None):
    """Predictive entropy H[Y_n] = -Σ_c pbar log pbar, pbar = mean_k p; shape [N].

    Raises ValueError/TypeError for input that is not log-probabilities [N, K, C].
    One pass over the input, which also validates it; memory beyond the O(N) output
    is bounded by the workspace. ``torch.ops.kbald_kernels.entropy``.
    """
    return _per_point(_entropy_op, log_probs, backend)


def conditional_entropy(log_probs, *, backend=None):
    """Expected entropy -mean_k Σ_c p log p; shape [N]. One pass, as :func:`entropy`."""
    return _per_point(_conditional_entropy_op, log_probs, backend)


def bald(log_probs, *, backend=None):
    """BALD mutual information I[Y_n; W] = entropy - conditional_entropy; shape [N].
    One pass, as :func:`entropy`."""
    return _per_point(_bald_op, log_probs, backend)


def least_confidence(log_probs, *, backend=None):
    """Least confidence 1 - max_c pbar[n, c] (pbar = mean_k p); shape [N]. Larger is
    more uncertain. One pass, as :func:`entropy`."""
    return _per_point(_least_confidence_op, log_probs, backend)


def margin(log_probs, *, backend=None):
    """Margin pbar_(1) - pbar_(2) between the two most probable classes of the mean
    prediction (0 for the second of a single class); shape [N]. Smaller is more
    uncertain. One pass, as :func:`entropy`."""
    return _per_point(_margin_op, log_probs, backend)


def _per_point(op, log_probs, backend):
    return to_output(op(tensor_argument(log_probs, "log_probs"), backend), is_numpy(log_probs))


# Each term of the validating pass: the pass it needs and its value from that pass's results.
_TERMS = {
    "entropy": (validated_entropies, lambda h, ch: h),
    "conditional_entropy": (validated_entropies, lambda h, ch: ch),
    "bald": (validated_entropies, lambda h, ch: h - ch),
    "least_confidence": (validated_uncertainties, lambda h, ch, lc, m: lc),
    "margin": (validated_uncertainties, lambda h, ch, lc, m: m),
}


def _information_term(term):
    """The op ``torch.ops.kbald_kernels.<term>`` of one term of the validating pass."""
    validating_pass, value = _TERMS[term]

    def impl(log_probs: torch.Tensor, backend: Optional[str] = None) -> torch.Tensor:
        t, _ = check_log_probs_form(log_probs)
        return fresh((value(*validating_pass(t, backend)),), (log_probs,))[0]

    impl.__name__ = term
    return custom_op(term, fake_per_point)(impl)


_entropy_op, _conditional_entropy_op, _bald_op, _least_confidence_op, _margin_op = map(_information_term, _TERMS)


def pairwise_mutual_information(a, b=None, *, backend=None):
    """I[Y_n; Y_m] between pool points of ``a`` [Na, K, C] and ``b`` [Nb, K, C]; shape [Na, Nb].

    ``b=None`` gives all pairs of ``a`` (symmetric; the diagonal is the information
    between two conditionally independent draws of the same point).
    ``a`` and ``b`` need the same K (shared posterior samples), C, and device.
    The entropies' pass over each input validates it; beyond the [Na, Nb] output,
    memory is bounded by the workspace. ``torch.ops.kbald_kernels.pairwise_mutual_information``.
    """
    out = _pairwise_mutual_information_op(tensor_argument(a, "a"), optional_tensor(b, "b"), backend)
    return to_output(out, is_numpy(a))


def _fake_pairwise(a, b, *args, **kwargs):
    if b is not None:  # on meta tensors the fake runs in place of the op: it must refuse as the op does
        check_same_device(a=a, b=b)
    other = a if b is None else b
    return a.new_empty((leading(a), leading(other)), dtype=result_dtype(a.dtype))


@custom_op("pairwise_mutual_information", _fake_pairwise)
def _pairwise_mutual_information_op(a: torch.Tensor, b: Optional[torch.Tensor],
                                    backend: Optional[str] = None) -> torch.Tensor:
    ta, _ = check_log_probs_form(a, "a")
    if b is not None:
        tb, _ = check_log_probs_form(b, "b", like=("a", ta))
        if tb.shape[1:] != ta.shape[1:]:
            raise ValueError(f"a and b must share K and C (the same posterior samples and classes), "
                             f"got a {tuple(ta.shape)} and b {tuple(tb.shape)}")
        if tb.dtype != ta.dtype:
            tb = tb.to(ta.dtype)
    else:
        tb = None
    pairwise = implementation("pairwise_mutual_information", backend, ta.device)
    entropy_a = validated_entropies(ta, backend, strict=False, name="a")[0]
    entropy_b = entropy_a if tb is None else validated_entropies(tb, backend, strict=False, name="b")[0]
    return fresh((pairwise(ta, tb, (entropy_a, entropy_b)),), (a, b))[0]


def epig(log_probs, target_log_probs, *, target_weights=None, backend=None):
    """Expected predictive information gain (Bickford Smith et al. 2023) of each pool
    point about the targets: ``Σ_t v[t]·I[Y_n; Y_t]``; shape [N], nats.

    ``log_probs`` [N, K, C] and ``target_log_probs`` [T, K, C] share the K posterior
    samples (the same model draws). ``target_weights`` [T]: non-negative, normalised
    to sum 1 (default uniform; e.g. for the pool-as-proxy estimator). The [N, T]
    mutual informations are never stored; both inputs are validated by their
    entropies' pass. ``torch.ops.kbald_kernels.epig``.
    """
    out = _epig_op(tensor_argument(log_probs, "log_probs"), tensor_argument(target_log_probs, "target_log_probs"),
                   optional_tensor(target_weights, "target_weights"), backend)
    return to_output(out, is_numpy(log_probs))


def _fake_epig(log_probs, target_log_probs, *args, **kwargs):
    check_same_device(log_probs=log_probs, target_log_probs=target_log_probs)
    return fake_per_point(log_probs)


@custom_op("epig", _fake_epig)
def _epig_op(log_probs: torch.Tensor, target_log_probs: torch.Tensor, target_weights: Optional[torch.Tensor],
             backend: Optional[str] = None) -> torch.Tensor:
    t, _ = check_log_probs_form(log_probs)
    return validated_epig(t, target_log_probs, target_weights, backend)


def validated_epig(t, target_log_probs, target_weights, backend, strict=True, rows=None):
    """:func:`epig` of log-probabilities ``t`` whose form is checked; ``rows`` as in
    :func:`validated_entropies`."""
    targets, weights = epig_targets(t, target_log_probs, target_weights)
    entropy_pool = validated_entropies(t, backend, strict=False, rows=rows)[0]
    entropy_targets = validated_entropies(targets, backend, strict=False, name="target_log_probs")[0]
    fn = implementation("epig", backend, t.device, strict)
    return fn(t, targets, (entropy_pool, entropy_targets), weights)


def epig_targets(t, target_log_probs, target_weights):
    """The targets checked against the pool ``t`` and their weights (float64) normalised to sum 1."""
    targets, _ = check_log_probs_form(target_log_probs, "target_log_probs", like=("log_probs", t))
    if targets.shape[1:] != t.shape[1:]:
        raise ValueError(f"target_log_probs must share K and C with log_probs (the same posterior samples and "
                         f"classes), got {tuple(targets.shape)} for a pool of {tuple(t.shape)}")
    if target_weights is None:
        weights = torch.full((targets.shape[0],), 1.0 / targets.shape[0], dtype=torch.float64, device=t.device)
    else:
        weights, _ = as_tensor(target_weights, "target_weights")
        weights = weights.to(device=t.device, dtype=torch.float64)
        if weights.shape != (targets.shape[0],):
            raise ValueError(f"target_weights must have shape [{targets.shape[0]}] (one per target), "
                             f"got {tuple(weights.shape)}")
        total = float(weights.sum())
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or not total > 0:
            raise ValueError("target_weights must be finite, non-negative and not all 0")
        weights = weights / total
    return targets, weights


def triple_interaction(log_probs, triples, *, backend=None):
    """Interaction information I[Y_a; Y_b; Y_c] for each row (a, b, c) of ``triples`` [T, 3]; shape [T].
    ``torch.ops.kbald_kernels.triple_interaction``."""
    triples = torch.as_tensor(triples, dtype=torch.int64) if isinstance(triples, (list, tuple)) else \
        tensor_argument(triples, "triples")
    out = _triple_interaction_op(tensor_argument(log_probs, "log_probs"), triples, backend)
    return to_output(out, is_numpy(log_probs))


def _fake_triples(log_probs, triples, *args, **kwargs):
    return log_probs.new_empty((leading(triples),), dtype=result_dtype(log_probs.dtype))


@custom_op("triple_interaction", _fake_triples)
def _triple_interaction_op(log_probs: torch.Tensor, triples: torch.Tensor,
                           backend: Optional[str] = None) -> torch.Tensor:
    t, _ = check_log_probs(log_probs)
    if triples.dim() != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape [T, 3], got {tuple(triples.shape)}")
    idx = check_indices(triples.reshape(-1), t.shape[0], "triples", distinct=False).view(-1, 3).to(t.device)
    return implementation("triple_interaction", backend, t.device)(t, idx)


def joint_entropy(log_probs, selected, *, num_samples=None, generator=None, backend=None):
    """H[Y_S, Y_i] of the selected set S with every pool point i; shape [N].

    ``num_samples=None`` enumerates all C^|S| label configurations exactly; an
    integer keeps at most that many, sampling them ancestrally once the exact count
    would exceed it (seeded by ``generator``: an int, or a torch.Generator, which
    gives the seed by one draw). ``torch.ops.kbald_kernels.joint_entropy``.
    """
    if num_samples is not None:
        num_samples = integer_argument(num_samples, "num_samples", lambda v: check_positive_int(v, "num_samples"))
    out = _joint_entropy_op(tensor_argument(log_probs, "log_probs"), index_argument(selected, "selected"),
                            num_samples, seed_argument(generator), backend)
    return to_output(out, is_numpy(log_probs))


@custom_op("joint_entropy", fake_per_point)
def _joint_entropy_op(log_probs: torch.Tensor, selected: torch.Tensor, num_samples: Optional[int],
                      seed: Optional[int], backend: Optional[str] = None) -> torch.Tensor:
    t, _ = check_log_probs(log_probs)
    sel = check_indices(selected, t.shape[0], "selected")
    if num_samples is not None:
        num_samples = check_positive_int(num_samples, "num_samples")
    fn = implementation("joint_entropy", backend, t.device)
    return fn(t, sel.tolist(), num_samples, seeded_generator(seed, t.device))
