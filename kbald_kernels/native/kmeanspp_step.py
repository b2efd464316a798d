"""The k-means++ / k-center step on the host C++ twin for CPU tensors."""

from .modules import POOL_TYPES, module_for


def kmeanspp_steps(embeddings, min_distances, selected, newest, seed, first_step, n_steps, mode="sample",
                   pool_indices=None):
    """:func:`kbald_kernels.reference.kmeanspp_steps` on the host C++ module for CPU
    tensors (same arguments and results): embeddings read as stored (float32,
    float16, bfloat16; rows with a unit feature stride keep theirs), the same Philox
    stream. float64 goes to the reference."""
    import torch

    from .. import reference

    if min_distances.device.type != "cpu":
        raise ValueError(f"the host twin of kmeanspp_steps takes CPU tensors, got {min_distances.device}")
    if min_distances.dtype == torch.float64 or _mixed(embeddings):
        return reference.kmeanspp_steps(embeddings, min_distances, selected, newest, seed, first_step, n_steps, mode,
                                        pool_indices)
    if isinstance(embeddings, reference.DenseEmbeddings):
        x, r = _unit_feature_stride(embeddings.x), None
    else:
        x, r = _unit_feature_stride(embeddings.features), _unit_feature_stride(embeddings.residuals)
    indices = torch.empty(n_steps, dtype=torch.int64)
    scores = torch.empty(n_steps, dtype=torch.float32)
    module_for(x.device).kmeanspp_steps(
        x.data_ptr(), POOL_TYPES[str(x.dtype)], x.stride(0), x.shape[1],
        0 if r is None else r.data_ptr(), 0 if r is None else r.stride(0), 0 if r is None else r.shape[1],
        x.shape[0], min_distances.data_ptr(), selected.view(torch.uint8).data_ptr(),
        -1 if newest is None else int(newest), seed & (2**64 - 1), first_step, n_steps, mode == "argmax",
        0 if pool_indices is None else pool_indices.contiguous().data_ptr(), indices.data_ptr(), scores.data_ptr())
    return indices, scores


def min_squared_distances(embeddings, centers):
    """:func:`kbald_kernels.reference.min_squared_distances` on the host C++ module for
    CPU tensors: the pool read as stored, the centers (few) as float32 rows; float32 [N].
    float64 goes to the reference."""
    import torch

    from .. import reference

    if embeddings.device.type != "cpu":
        raise ValueError(f"the host twin of min_squared_distances takes CPU tensors, got {embeddings.device}")
    if embeddings.dtype == torch.float64 or _mixed(embeddings):
        return reference.min_squared_distances(embeddings, centers)
    dense = isinstance(embeddings, reference.DenseEmbeddings)
    x, r = (embeddings.x, None) if dense else (embeddings.features, embeddings.residuals)
    x, r = _unit_feature_stride(x), None if r is None else _unit_feature_stride(r)
    cx = (centers.x if dense else centers.features).to(torch.float32).contiguous()
    cr = None if dense else centers.residuals.to(torch.float32).contiguous()
    out = torch.empty(x.shape[0], dtype=torch.float32)
    module_for(x.device).min_squared_distances(
        x.data_ptr(), POOL_TYPES[str(x.dtype)], x.stride(0), x.shape[1],
        0 if r is None else r.data_ptr(), 0 if r is None else r.stride(0), 0 if r is None else r.shape[1],
        x.shape[0], cx.data_ptr(), 0 if cr is None else cr.data_ptr(), cx.shape[0], out.data_ptr())
    return out


def gather_rows(t, rows):
    """Rows ``rows`` (int64 indices) of a CPU matrix ``t`` [*, D] (float32, float16,
    bfloat16; unit feature stride) copied into a new contiguous tensor on the host C++
    module, and the first copy holding NaN or inf (-1: none), in one read of them."""
    import torch

    rows = rows.contiguous()
    out = torch.empty((rows.numel(), t.shape[1]), dtype=t.dtype)
    first_invalid = module_for(t.device).gather_rows(t.data_ptr(), POOL_TYPES[str(t.dtype)], t.stride(0), t.shape[1],
                                                     rows.data_ptr(), rows.numel(), out.data_ptr())
    return out, first_invalid


def kmeanspp_candidate(min_distances, selected, pool_indices, seed, step, mode):
    """One k-means++ / k-center step's (tier, key, row) among a shard's rows on the host
    C++ module, as :func:`kmeanspp_steps` ranks them, the draw keyed by ``pool_indices``
    (each row's index in the whole pool): float32 running distances already lowered
    by the newest center, bool ``selected`` flags; row -1 when every row is selected."""
    import torch

    return module_for(min_distances.device).kmeanspp_candidate(
        min_distances.data_ptr(), selected.view(torch.uint8).data_ptr(), pool_indices.contiguous().data_ptr(),
        min_distances.shape[0], seed & (2**64 - 1), step, mode == "argmax")


def _mixed(embeddings):
    """Factors stored in two dtypes: the compiled step reads both as one (the reference takes them)."""
    return hasattr(embeddings, "residuals") and embeddings.residuals.dtype != embeddings.features.dtype


def _unit_feature_stride(t):
    return t if t.stride(1) == 1 else t.contiguous()
