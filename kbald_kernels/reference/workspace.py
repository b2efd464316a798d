"""The workspace budget that bounds every reference op's temporary memory."""

import os

import torch

DEFAULT_WORKSPACE_BYTES = 256 * 2**20
WORKSPACE_ENV = "KBALD_WORKSPACE_BYTES"


def workspace_bytes():
    """Bytes a reference op may use for temporaries (``KBALD_WORKSPACE_BYTES``, default 256 MiB)."""
    raw = os.environ.get(WORKSPACE_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_WORKSPACE_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{WORKSPACE_ENV} must be an integer number of bytes, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{WORKSPACE_ENV} must be positive, got {value}")
    return value


def chunk_size(bytes_per_item, total):
    """How many items of ``bytes_per_item`` temporary bytes fit the budget (at least 1, at most ``total``)."""
    return max(1, min(total, workspace_bytes() // max(1, int(bytes_per_item))))


# Streaming ops (one pass over a large operand per call) run fastest when each
# chunk's temporaries stay in cache rather than filling the whole workspace.
CACHE_BYTES = 2**20


def cache_chunk_size(bytes_per_item, total):
    """Like :func:`chunk_size`, but small enough for the temporaries to stay in cache."""
    return max(1, min(chunk_size(bytes_per_item, total), CACHE_BYTES // max(1, int(bytes_per_item))))


def compute_dtype(dtype):
    """float64 stays float64 (the oracle); every other float computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def xlogx(x):
    """x·log x with 0·log 0 = 0 (one fused op)."""
    return torch.special.xlogy(x, x)
