"""The torch custom operators (``torch.ops.kbald_kernels.<op>``) behind the public API.

Every public op and every selection whose batch size follows from its arguments is
one custom operator with a fake implementation, so ``torch.compile``
(``fullgraph=True``) and ``torch.export`` see one op per call. An op takes tensors
and plain scalars only; the public functions around them turn numpy arrays, index
lists and generators into those, and op results back into numpy and
:class:`~kbald_kernels.selection.Selection`.

Validation of the inputs and of every argument that reaches the op runs inside
it, when it runs: such an error is the same ``ValueError`` with the same message
compiled or not. What the wrappers check before the op (a Python argument of the
wrong type, a negative int seed) raises while tracing under ``torch.compile``.
Fake implementations give the shapes a valid call returns; they raise only for
inputs on different devices (on meta tensors they run in place of the op).
"""

import numbers
from typing import Callable

import numpy as np
import torch

from .selection import Selection
from .validation import as_tensor, seed_from, to_output

NAMESPACE = "kbald_kernels"
_LIBRARY = torch.library.Library(NAMESPACE, "DEF")

# name -> the registered op (the tests opcheck each one), and its Python kernel (the
# overhead report calls it past the dispatcher).
REGISTERED: dict[str, Callable] = {}
IMPLEMENTATIONS: dict[str, Callable] = {}

_U64 = 2**64


def custom_op(name, fake, mutates_args=()):
    """Register the decorated function as ``torch.ops.kbald_kernels.<name>``: schema from its
    annotations (as ``torch.library.custom_op`` infers it), the function as the kernel of
    every device, ``fake`` as the fake; returns the op.

    Registered through ``torch.library.Library`` rather than ``custom_op``, whose Python
    autograd wrapper costs about 30 µs a call (15 % of BALD on a 1 000-point pool): no
    output has a gradient, so autograd falls through to the kernel, which runs under
    ``no_grad``, and outputs never require grad, eager or compiled.
    """
    def register(impl):
        schema = torch.library.infer_schema(impl, mutates_args=mutates_args)

        def kernel(*args, **kwargs):
            with torch.no_grad():
                return impl(*args, **kwargs)

        _LIBRARY.define(name + schema)
        _LIBRARY.impl(name, kernel, "CompositeExplicitAutograd")
        _LIBRARY.impl(name, torch.library.fallthrough_kernel, "Autograd")
        torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=_LIBRARY)
        IMPLEMENTATIONS[name] = impl
        op = REGISTERED[name] = getattr(getattr(torch.ops, NAMESPACE), name).default
        return op

    return register


def fresh(outputs, inputs):
    """``outputs`` as an op may return them: each a contiguous tensor of its own, neither
    aliasing an input or an earlier output nor offset into a larger buffer (the fake
    says so of every result). Only the tensors that are not already are copied."""
    seen = {t.untyped_storage().data_ptr() for t in inputs if isinstance(t, torch.Tensor) and t.numel()}
    result = []
    for t in outputs:
        if t.numel():
            if t.untyped_storage().data_ptr() in seen or t.storage_offset() or not t.is_contiguous():
                t = t.clone(memory_format=torch.contiguous_format)
            seen.add(t.untyped_storage().data_ptr())
        result.append(t)
    return tuple(result)


def result_dtype(dtype):
    """The dtype of an op's scores: float64 for float64 input, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def leading(t):
    """``t``'s first size, 0 for a 0-dim tensor: what a fake may read of any input."""
    return t.shape[0] if t.dim() else 0


def fake_per_point(log_probs, *args, **kwargs):
    """Fake of an op returning one score per pool point."""
    return log_probs.new_empty((leading(log_probs),), dtype=result_dtype(log_probs.dtype))


def fake_indices(size, device):
    """Fake int64 indices of ``size`` points (a size the op refuses below 0 gives none)."""
    return torch.empty(torch.sym_max(size, 0), dtype=torch.int64, device=device)


def fake_selection(size, dtype, device):
    """Fake (indices, scores) of a selection of ``size`` points."""
    indices = fake_indices(size, device)
    return indices, torch.empty(indices.shape, dtype=dtype, device=device)


def fake_batch(log_probs, batch_size, *args, **kwargs):
    """Fake of a selection of ``batch_size`` points from log-probabilities."""
    return fake_selection(batch_size, result_dtype(log_probs.dtype), log_probs.device)


def top_set(values, size, descending=True):
    """Positions of the ``size`` best ``values`` [N] (largest, or smallest with
    ``descending=False``), ascending; among equal values the smaller positions: the
    set a stable sort of all N puts first, at the cost of an unsorted top-k, a count
    of the values equal to its last, and a sort of ``size`` positions. For op bodies:
    with ties at the boundary the set is rebuilt from masks whose sizes depend on the data."""
    if size >= values.numel():
        return torch.arange(values.numel(), device=values.device)
    best = torch.topk(values, size, largest=descending, sorted=False)
    threshold = best.values.min() if descending else best.values.max()
    tied = values == threshold
    if int(tied.sum()) == int((best.values == threshold).sum()):  # every point at the boundary value is in
        return best.indices.sort().values
    ahead = (values > threshold if descending else values < threshold).nonzero().view(-1)
    return torch.cat([ahead, tied.nonzero().view(-1)[: size - ahead.numel()]]).sort().values


def top_order(values, size, descending=True):
    """:func:`top_set` best first, equal values in position order: what a stable sort
    of all N gives, at the cost of a top-k and a sort of ``size`` (a prefilter or a
    batch is usually far smaller than its pool)."""
    chosen = top_set(values, size, descending)
    return chosen[torch.sort(values[chosen], descending=descending, stable=True).indices]


def integer_argument(value, name, check=None):
    """An integer argument as an int for the op (numpy integers included), which checks
    its value. Anything else goes to ``check`` (the op's own check: it raises, or the
    value is a whole number it accepts), or gets a TypeError."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if check is None:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    check(value)
    return int(value)


def number_argument(value, name, needed=True):
    """A float argument for the op, which checks its value; not a number: ValueError
    here, unless not ``needed`` (the op ignores it), then 1.0."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if needed:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return 1.0


def tensor_argument(x, name):
    """A tensor for an op: tensors as they are, numpy arrays wrapped (TypeError otherwise)."""
    return as_tensor(x, name)[0]


def optional_tensor(x, name):
    return None if x is None else tensor_argument(x, name)


def index_argument(x, name, masks=False):
    """Pool indices (a sequence, a range, an array or a tensor) as a tensor; the op checks
    them. With ``masks``, a list of bools is a mask (as ``candidates=`` takes one)."""
    if x is None:
        return None
    if isinstance(x, (list, tuple, range)):
        values = list(x)
        if masks and values and all(isinstance(v, bool) for v in values):
            return torch.tensor(values)
        return torch.as_tensor(values, dtype=torch.int64)
    return tensor_argument(x, name)


def candidates_argument(candidates):
    return index_argument(candidates, "candidates", masks=True)


def choice_argument(value, name, choices):
    """A string argument for the op, which checks it against ``choices``; anything but a
    string gets the op's ValueError here (the schema takes strings only)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def seed_argument(generator):
    """The op's form of ``generator``: None (torch's global RNG, drawn inside the op),
    or a 64-bit seed as a signed int64 (a torch.Generator gives its seed by one draw)."""
    if generator is None:
        return None
    seed = seed_from(generator)
    return seed - _U64 if seed >= 2**63 else seed


def seed_value(seed):
    """:func:`seed_argument` undone inside the op: the unsigned 64-bit seed (None: one
    drawn from torch's global RNG)."""
    return seed_from(None if seed is None else seed % _U64)


def seeded_generator(seed, device):
    """Inside an op: a torch.Generator on ``device`` seeded by :func:`seed_value`, or None
    (torch's global RNG) for None."""
    return None if seed is None else torch.Generator(device=device).manual_seed(seed_value(seed))


def is_numpy(x):
    return isinstance(x, np.ndarray)


def as_selection(result, np_in):
    indices, scores = result
    return Selection(to_output(indices, np_in), to_output(scores, np_in))
