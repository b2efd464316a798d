"""Input checks shared by every public entry point.

Errors name the argument, what was expected and the first offending index.
The scans run in chunks under the workspace budget.
"""

import numbers

import numpy as np
import torch

from .reference.normalisation import NORMALISATION_TOLERANCE, rows_outside
from .reference.workspace import chunk_size, compute_dtype

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_tensor(x, name):
    """(tensor, came_from_numpy); numpy arrays are wrapped without a copy."""
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold numbers, got numpy dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x)), True
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def to_output(x, as_numpy):
    return x.detach().cpu().numpy() if as_numpy else x


def _require_float(t, name):
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got {t.dtype}")


def _first(mask):
    return tuple(int(i) for i in mask.nonzero()[0])


def _scan(t, check):
    """Run ``check(chunk, offset)`` over row chunks of ``t``."""
    step = chunk_size(4 * t[0].numel() * t.element_size() if t.shape[0] else 1, t.shape[0])
    for start in range(0, t.shape[0], step):
        check(t[start : start + step], start)


def _check_finite(t, name, allow_neg_inf=False, offset=0, rows=None):
    """One read of ``t``: NaN, +inf (and -inf unless allowed) raise ValueError with the first index
    (row ``n`` named ``rows[n]`` when ``t`` holds those rows of the caller's input)."""
    def check(chunk, start):
        # A sum is NaN or +inf when any summand is NaN or +inf (and ±inf when one is
        # ±inf), so a passing sum clears the chunk in one read (torch's element-wise
        # isfinite costs about twenty on a CPU); a finite chunk whose sum overflows falls
        # through to that. Half precision sums in float32, where its values cannot overflow.
        total = chunk.sum(dtype=torch.float32 if chunk.element_size() < 4 else None)
        if bool(total < float("inf")) if allow_neg_inf else bool(torch.isfinite(total)):
            return
        bad = ~(chunk < float("inf")) if allow_neg_inf else ~torch.isfinite(chunk)
        if not bool(bad.any()):
            return
        index = _first(bad)
        value = float(chunk[index])
        what = "NaN" if value != value else ("+inf" if value > 0 else "-inf")
        row = _row_name(index[0] + start + offset, rows)
        raise ValueError(f"{name} contains {what} at index {(row,) + index[1:]}")

    _scan(t, check)


def _row_name(n, rows):
    return n if rows is None else int(rows[n])


def _probability_sums(chunk):
    """Σ_c exp(log p) for every (n, k) of a chunk [n, K, C]: float64 for float64 input,
    float32 otherwise.

    CPU input of the other dtypes goes to the host C++ module, which reads it as
    stored in one vectorised pass, where torch makes an exp pass and then a slow
    reduction over a short last axis.
    """
    if chunk.device.type == "cpu" and chunk.dtype != torch.float64:
        from . import native

        module = native.host_module()
        if not isinstance(module, str):
            sums = torch.empty(chunk.shape[:-1], dtype=torch.float32)
            module.probability_sums(*native.pool_arguments(chunk), sums.data_ptr(), *chunk.shape)
            return sums
    return torch.exp(chunk.to(compute_dtype(chunk.dtype))).sum(-1)


def check_log_probs_form(log_probs, name="log_probs", like=None):
    """Check what log-probabilities look like without reading them; returns (tensor, came_from_numpy).

    Rejects: a non-tensor, rank other than 3, N, K or C of 0, non-float dtype, and a
    device other than that of ``like`` (a (name, tensor) pair). The values are checked
    by the op's own first pass (:func:`confirm_log_probs`) or by :func:`scan_log_probs`.
    """
    t, from_numpy = as_tensor(log_probs, name)
    if t.dim() != 3:
        raise ValueError(f"{name} must have shape [N, K, C] (pool points, posterior samples, classes), "
                         f"got {t.dim()} dimensions with shape {tuple(t.shape)}")
    _require_float(t, name)
    for size, what in zip(t.shape, ("N (pool points)", "K (posterior samples)", "C (classes)")):
        if size == 0:
            raise ValueError(f"{name} has {what} = 0; shape {tuple(t.shape)}")
    if like is not None:
        check_same_device(**{like[0]: like[1], name: t})
    return t, from_numpy


def scan_log_probs(t, name="log_probs", rows=None):
    """Read every value once: NaN, +inf and rows whose probabilities do not sum to 1
    within the dtype's tolerance raise ValueError naming the first offending index.
    -inf (probability 0) is allowed. ``rows``: when ``t`` holds rows of the caller's
    input (a candidate subset), their indices there, which the message names."""
    def check(chunk, offset):
        # One pass of row sums of exp catches NaN and +inf (the sum is NaN or +inf)
        # and unnormalised rows; only a failing chunk is searched for the exact
        # element. A plain sum is about 3x cheaper than logsumexp, and p <= 1 needs
        # no max shift.
        total = _probability_sums(chunk)
        bad = rows_outside(total, t.dtype)
        if not bool(bad.any()):
            return
        _check_finite(chunk, name, allow_neg_inf=True, offset=offset, rows=rows)
        n, k = _first(bad)
        raise ValueError(
            f"{name}[{_row_name(n + offset, rows)}, {k}] is not normalised: its probabilities sum to "
            f"{float(total[n, k]):.6g}, not 1 "
            f"(tolerance {NORMALISATION_TOLERANCE[t.dtype]:g} in log space for {t.dtype}); pass log-probabilities, "
            "or convert with kbald_kernels.as_log_probs")

    _scan(t, check)


@torch.compiler.disable
def confirm_log_probs(t, invalid, name="log_probs", rows=None):
    """Finish the validation an op's first pass carried: ``invalid`` is that pass's
    flag (a 0-dim tensor, or a count), read here once. Only when it is raised is the
    input scanned again, to name the first offending element (``rows``: as in
    :func:`scan_log_probs`). Inside the ops it runs eagerly; where torch.compile
    traces it (the selections that are not ops), the read is a graph break."""
    if bool(invalid):
        scan_log_probs(t, name, rows)


def check_log_probs(log_probs, name="log_probs", like=None):
    """:func:`check_log_probs_form` and :func:`scan_log_probs`, for ops whose own first
    pass does not read every row; returns (tensor, came_from_numpy)."""
    t, from_numpy = check_log_probs_form(log_probs, name, like)
    scan_log_probs(t, name)
    return t, from_numpy


def check_embeddings(embeddings, name="embeddings"):
    """Validate dense [N, D] embeddings or BADGE factors (features [N, H], residuals [N, C]).

    Returns (list of tensors: one for dense, two for factored, came_from_numpy).
    """
    tensors, from_numpy = check_embeddings_form(embeddings, name)
    check_embedding_values(tensors, name)
    return tensors, from_numpy


def check_embeddings_form(embeddings, name="embeddings"):
    """:func:`check_embeddings`' shapes, dtypes and devices; no value is read."""
    tensors, from_numpy = embedding_parts(embeddings, name)
    for t, n in zip(tensors, _embedding_names(tensors, name)):
        if t.dim() != 2:
            raise ValueError(f"{n} must have shape [N, D], got shape {tuple(t.shape)}")
        _require_float(t, n)
        if t.shape[0] == 0 or t.shape[1] == 0:
            raise ValueError(f"{n} must have at least one row and one column, got shape {tuple(t.shape)}")
    if len(tensors) == 2:
        features, residuals = tensors
        if features.shape[0] != residuals.shape[0]:
            raise ValueError(f"{name}: features have {features.shape[0]} rows but residuals have "
                             f"{residuals.shape[0]}; both need one row per pool point")
        check_same_device(**dict(zip(_embedding_names(tensors, name), tensors)))
    return tensors, from_numpy


def check_embedding_values(tensors, name="embeddings", rows=None):
    """NaN or inf in embedding ``tensors`` raise, naming the first; with ``rows`` (pool
    indices) only those rows are read, gathered a bounded chunk at a time, so a selection
    restricted to candidates reads no other row here either."""
    for t, n in zip(tensors, _embedding_names(tensors, name)):
        if rows is None:
            _check_finite(t, n)
            continue
        step = chunk_size(4 * t.shape[1] * t.element_size(), rows.numel())
        for start in range(0, rows.numel(), step):
            chunk_rows = rows[start : start + step]
            _check_finite(t.index_select(0, chunk_rows.to(t.device)), n, rows=chunk_rows)


def gather_embedding_rows(tensors, rows, name="embeddings"):
    """Rows ``rows`` (pool indices, on the tensors' device) of embedding ``tensors``
    gathered into new tensors and checked as :func:`check_embedding_values` checks
    them, naming pool indices. CPU tensors of the host module's types are copied and
    checked in one read on it; others by ``index_select`` and a read of the copy."""
    from . import native
    from .native.modules import POOL_TYPES

    module = native.host_module()
    gathered = []
    for t, n in zip(tensors, _embedding_names(tensors, name)):
        if (t.device.type == "cpu" and str(t.dtype) in POOL_TYPES and t.stride(1) == 1
                and not isinstance(module, str)):
            copy, first_invalid = native.gather_rows(t, rows)
            if first_invalid >= 0:  # names the first bad value of that row
                _check_finite(copy[first_invalid : first_invalid + 1], n, offset=first_invalid, rows=rows)
        else:
            copy = t.index_select(0, rows)
            _check_finite(copy, n, rows=rows)
        gathered.append(copy)
    return gathered


def _embedding_names(tensors, name):
    return (f"{name} features", f"{name} residuals") if len(tensors) == 2 else (name,)


def embedding_parts(embeddings, name="embeddings"):
    """Dense embeddings (one tensor or array) or BADGE factors (a pair) as a list of one
    or two tensors, and whether they came from numpy; their values are not read."""
    if isinstance(embeddings, (tuple, list)):
        if len(embeddings) != 2:
            raise ValueError(f"{name} as factors must be (features [N, H], residuals [N, C]), "
                             f"got a sequence of {len(embeddings)}")
        parts = [as_tensor(e, f"{name}[{i}]") for i, e in enumerate(embeddings)]
    else:
        parts = [as_tensor(embeddings, name)]
    return [p[0] for p in parts], parts[0][1]


def check_same_device(**tensors):
    items = list(tensors.items())
    first_name, first = items[0]
    for n, t in items[1:]:
        if t.device != first.device:
            raise ValueError(f"{n} is on {t.device} but {first_name} is on {first.device}; "
                             "put them on the same device")
    return first.device


def check_batch_size(batch_size, pool_size, name="batch_size"):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(batch_size).__name__}")
    if not 1 <= batch_size <= pool_size:
        raise ValueError(f"{name} must be between 1 and the number of selectable pool points "
                         f"({pool_size}), got {batch_size}")
    return int(batch_size)


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_indices(indices, pool_size, name, distinct=True):
    """1-D int64 indices into a pool of ``pool_size``, each in range (and distinct)."""
    t, _ = as_tensor(indices, name) if not isinstance(indices, (list, tuple, range)) else \
        (torch.as_tensor(list(indices), dtype=torch.int64), False)
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence of pool indices, got shape {tuple(t.shape)}")
    if t.numel() and (t.dtype.is_floating_point or t.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer pool indices, got {t.dtype}")
    t = t.to(torch.int64)
    if t.numel():
        low, high = t.aminmax()
        if int(low) < 0 or int(high) >= pool_size:
            i = _first((t < 0) | (t >= pool_size))[0]
            raise ValueError(f"{name}[{i}] = {int(t[i])} is outside the pool [0, {pool_size})")
    if distinct and t.unique().numel() != t.numel():
        raise ValueError(f"{name} contains repeated indices")
    return t


def seed_from(generator):
    """A 64-bit seed for the counter-based streams: from an int, a torch.Generator, or the global RNG."""
    if generator is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        if generator < 0:
            raise ValueError(f"generator as a seed must be >= 0, got {generator}")
        return int(generator) & (2**64 - 1)
    raise TypeError(f"generator must be None, an int seed or a torch.Generator, got {type(generator).__name__}")


def torch_generator(generator, device):
    """A torch.Generator on ``device`` (None keeps torch's global RNG)."""
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        if generator.device.type != torch.device(device).type:
            raise ValueError(f"generator is on {generator.device} but the input is on {device}")
        return generator
    return torch.Generator(device=device).manual_seed(seed_from(generator))
