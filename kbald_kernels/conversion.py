"""Conversion of other prediction layouts to log-probabilities [N, K, C]."""

import torch

from .validation import as_tensor, to_output

LAYOUTS = ("NKC", "NCK", "KNC")


def as_log_probs(predictions, *, layout="NKC", kind="log_probs"):
    """Return log-probabilities [N, K, C] from ``predictions``.

    ``layout``: axis order of the input: "NKC" (batchbald_redux), "NCK" (baal) or
    "KNC" (a stack of K forward passes). ``kind``: "log_probs", "probs" (zeros
    become -inf) or "logits" (log-softmax over classes). Numpy in gives numpy out.
    """
    t, np_in = as_tensor(predictions, "predictions")
    if t.dim() != 3:
        raise ValueError(f"predictions must be 3-D ({layout}), got shape {tuple(t.shape)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not t.dtype.is_floating_point:
        t = t.to(torch.float32)
    order = {"NKC": (0, 1, 2), "NCK": (0, 2, 1), "KNC": (1, 0, 2)}[layout]
    t = t.permute(*order)
    if kind == "log_probs":
        out = t
    elif kind == "probs":
        if bool((t < 0).any()):
            raise ValueError("predictions given as probabilities contain negative values")
        out = torch.log(t)
    elif kind == "logits":
        out = torch.log_softmax(t.to(torch.float32) if t.dtype in (torch.float16, torch.bfloat16) else t, -1)
        out = out.to(t.dtype)
    else:
        raise ValueError(f"kind must be 'log_probs', 'probs' or 'logits', got {kind!r}")
    return to_output(out.contiguous(), np_in)
