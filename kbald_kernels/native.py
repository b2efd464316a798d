"""Loading of the compiled modules, with the reason when one is missing."""

import functools
import math


@functools.lru_cache(maxsize=None)
def host_module():
    """``kbald_kernels._host``, or a string saying why it cannot be imported."""
    try:
        from . import _host
    except ImportError as exc:
        return f"host C++ module not built ({exc}); reinstall with `pip install -e .`"
    return _host


@functools.lru_cache(maxsize=None)
def cuda_module():
    """``kbald_kernels._cuda``, or a string saying why it cannot be imported."""
    try:
        from . import _cuda
    except ImportError as exc:
        return (f"CUDA module not built ({exc}); install where nvcc is found, "
                "or with KBALD_FORCE_CUDA=1 to make a missing nvcc an error")
    return _cuda


def row_entropy(probs):
    """Entropy of each row of a [rows, cols] probability tensor through the compiled modules.

    CPU tensors run the host C++ module, CUDA tensors the CUDA module on the
    tensor's device and current stream. Both share ``csrc/include/kbald/entropy_math.h``.
    """
    import torch

    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise ValueError("probs must be a 2-D torch.Tensor [rows, cols]")
    if probs.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"probs must be float32 or float64, got {probs.dtype}")
    probs = probs.contiguous()
    out = torch.empty(probs.shape[0], dtype=probs.dtype, device=probs.device)
    dtype = "float64" if probs.dtype == torch.float64 else "float32"
    if probs.device.type == "cpu":
        module = host_module()
        if isinstance(module, str):
            raise RuntimeError(module)
        module.row_entropy(probs.data_ptr(), out.data_ptr(), probs.shape[0], probs.shape[1], dtype)
    elif probs.device.type == "cuda":
        module = cuda_module()
        if isinstance(module, str):
            raise RuntimeError(module)
        with torch.cuda.device(probs.device):
            stream = torch.cuda.current_stream(probs.device).cuda_stream
            module.row_entropy(probs.data_ptr(), out.data_ptr(), probs.shape[0], probs.shape[1], dtype, stream)
    else:
        raise ValueError(f"probs must be on a CPU or CUDA device, got {probs.device}")
    return out


def _module_for(device):
    module = host_module() if device.type == "cpu" else cuda_module()
    if isinstance(module, str):
        raise RuntimeError(module)
    return module


# Type codes of kbald/log_probs.h: the compiled modules read the pool as stored.
_POOL_TYPES = {"torch.float32": 0, "torch.float16": 1, "torch.bfloat16": 2}


def _pool(log_probs):
    """(pointer, type code, element strides n, k, c): a [N, K, C] pool as the compiled
    modules take it, with no converted or contiguous copy."""
    return (log_probs.data_ptr(), _POOL_TYPES[str(log_probs.dtype)], *log_probs.stride())


def _float32_weights(weights, alpha):
    """Contiguous float32 configuration weights [M, K] and alpha [M] (small: no pool-sized copy)."""
    import torch

    return weights.to(torch.float32).contiguous(), alpha.to(torch.float32).contiguous()


def accumulate_joint_entropy(weights, alpha, log_probs):
    """``out[i] = Σ_m alpha[m]·H(q[m, i, :])``, ``q[m, i] = weights[m] @ exp(log_probs[i])``; float32 [N].

    The compiled twin of :func:`kbald_kernels.reference.accumulate_joint_entropy`:
    the CUDA kernel for CUDA tensors (on the tensor's device and current stream),
    the host C++ twin (OpenMP) for CPU tensors. Both share
    ``csrc/include/kbald/joint_entropy_math.h`` and sum in a fixed order, so repeated
    calls give identical results. Both read fp32/fp16/bf16 and strided log_probs as
    stored and exponentiate tile by tile: nothing of the pool's size is allocated
    (the CUDA path adds float64 partial sums, splits × N·C, within the workspace but
    at least one N·C). Computes in float32
    with float64 sums; float64 log_probs go to the reference, as with the Triton kernels.
    """
    import torch

    if log_probs.dim() != 3 or weights.dim() != 2 or alpha.dim() != 1:
        raise ValueError("accumulate_joint_entropy needs weights [M, K], alpha [M] and log_probs [N, K, C], got "
                         f"{tuple(weights.shape)}, {tuple(alpha.shape)}, {tuple(log_probs.shape)}")
    n_points, n_samples, n_classes = log_probs.shape
    n_configs = weights.shape[0]
    if weights.shape[1] != n_samples or alpha.shape[0] != n_configs:
        raise ValueError(f"weights must be [M, {n_samples}] and alpha [M], got {tuple(weights.shape)} and "
                         f"{tuple(alpha.shape)}")
    if log_probs.dtype == torch.float64:
        from .reference import accumulate_joint_entropy as reference_accumulate

        return reference_accumulate(weights, alpha, log_probs)  # float64 is the oracle's
    device = log_probs.device
    if weights.device != device or alpha.device != device:
        raise ValueError(f"weights, alpha and log_probs must be on one device, got {weights.device}, "
                         f"{alpha.device}, {device}")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"log_probs must be on a CPU or CUDA device, got {device}")
    module = _module_for(device)
    weights, alpha = _float32_weights(weights, alpha)
    out = torch.empty(n_points, dtype=torch.float32, device=device)
    sizes = (n_configs, n_points, n_samples, n_classes)
    if device.type == "cpu":
        module.accumulate_joint_entropy(weights.data_ptr(), alpha.data_ptr(), *_pool(log_probs), out.data_ptr(),
                                        *sizes)
        return out
    with torch.cuda.device(device):
        # Each split keeps N·C double partial sums: as many splits as fill the device,
        # but no more than the workspace holds.
        from .reference.workspace import workspace_bytes

        most = max(1, workspace_bytes() // (8 * n_points * n_classes))
        splits = min(module.joint_entropy_splits(n_configs, n_points, n_classes, device.index or 0), most)
        partial = torch.empty(splits, n_points * n_classes, dtype=torch.float64, device=device)
        stream = torch.cuda.current_stream(device).cuda_stream
        module.accumulate_joint_entropy(weights.data_ptr(), alpha.data_ptr(), *_pool(log_probs), out.data_ptr(),
                                        partial.data_ptr(), *sizes, splits, stream)
    return out


def joint_entropy(log_probs, selected, num_samples=None, generator=None):
    """:func:`kbald_kernels.reference.joint_entropy` with the accumulation over
    configurations on the CUDA kernel or the host twin (see accumulate_joint_entropy)."""
    from .reference import joint_entropy as reference_joint_entropy

    return reference_joint_entropy(log_probs, selected, num_samples, generator, accumulate=accumulate_joint_entropy)


def emulate_joint_entropy_kernel(weights, alpha, log_probs, splits):
    """The CUDA joint-entropy kernel's block program replayed on the host, thread by
    thread, for CPU tensors: checks the kernel's indexing where there is no GPU.
    float64 log_probs are rounded to float32, the widest type the kernel reads."""
    import torch

    if log_probs.dtype == torch.float64:
        log_probs = log_probs.float()

    module = _module_for(torch.device("cpu"))
    weights, alpha = _float32_weights(weights, alpha)
    out = torch.empty(log_probs.shape[0], dtype=torch.float32)
    module.emulate_joint_entropy_kernel(weights.data_ptr(), alpha.data_ptr(), *_pool(log_probs), out.data_ptr(),
                                        weights.shape[0], *log_probs.shape, splits)
    return out


def entropies(log_probs):
    """(entropy, conditional_entropy, invalid) of CPU log-probabilities [N, K, C] in one
    pass on the host C++ twin of the Triton information kernel (OpenMP): float32 [N]
    each, and the count of (n, k) rows that hold NaN or fail the normalisation bounds
    (the pass is the input's validation; 0 for valid input).

    fp32/fp16/bf16 and strided input are read as stored; float64 goes to the
    reference, the oracle's precision.
    """
    import torch

    if log_probs.dtype == torch.float64:
        from .reference import entropies as reference_entropies

        return reference_entropies(log_probs)
    entropy, conditional, _, _, invalid = _information_terms(log_probs, confidence=False)
    return entropy, conditional, invalid


def uncertainties(log_probs):
    """:func:`kbald_kernels.reference.uncertainties` in the host twin's one pass
    (:func:`entropies`), which also keeps least confidence and margin."""
    import torch

    if log_probs.dtype == torch.float64:
        from .reference import uncertainties as reference_uncertainties

        return reference_uncertainties(log_probs)
    return _information_terms(log_probs, confidence=True)


def _information_terms(log_probs, confidence):
    import torch

    from .reference.normalisation import normalisation_bounds

    if log_probs.device.type != "cpu":
        raise ValueError(f"the host twin of the information kernel takes CPU tensors, got {log_probs.device}")
    module = _module_for(log_probs.device)
    # Poisoned, so a point the loop fails to write cannot pass for a value.
    out = torch.full((4 if confidence else 2, log_probs.shape[0]), math.nan, dtype=torch.float32)
    extra = (out[2].data_ptr(), out[3].data_ptr()) if confidence else (0, 0)
    invalid = module.entropies(*_pool(log_probs), out[0].data_ptr(), out[1].data_ptr(), *extra, *log_probs.shape,
                               *normalisation_bounds(log_probs.dtype))
    if confidence:
        return out[0], out[1], out[2], out[3], invalid
    return out[0], out[1], None, None, invalid


MAX_PAIR_CLASSES = 128  # the widest register row of the host pair passes (MI with a pick, 2-BALD step)


def _takes_pair_pass(log_probs, op):
    """Whether the host pair pass of ``op`` takes this pool (else the reference does)."""
    if log_probs.device.type != "cpu":
        raise ValueError(f"the host twin of {op} takes CPU tensors, got {log_probs.device}")
    import torch

    return log_probs.dtype != torch.float64 and log_probs.shape[2] <= MAX_PAIR_CLASSES


def _mutual_information_with(log_probs, entropy, pick, out):
    _module_for(log_probs.device).mutual_information_with_pick(*_pool(log_probs), entropy.data_ptr(), pick,
                                                               out.data_ptr(), *log_probs.shape)


def mutual_information_with_pick(log_probs, entropy, pick):
    """:func:`kbald_kernels.reference.mutual_information_with_pick` on the host C++
    module (the 2-BALD step's pass), for CPU tensors: float32 [N]. fp32/fp16/bf16 and
    strided input are read as stored; float64 and C above 128 go to the reference."""
    import torch

    from . import reference

    if not _takes_pair_pass(log_probs, "mutual_information_with_pick"):
        return reference.mutual_information_with_pick(log_probs, entropy, pick)
    out = torch.empty(log_probs.shape[0], dtype=torch.float32)
    _mutual_information_with(log_probs, entropy.to(torch.float32).contiguous(), int(pick[0]), out)
    return out


def pairwise_mutual_information(a, b=None, entropies_ab=None):
    """:func:`kbald_kernels.reference.pairwise_mutual_information` on the host C++
    module for CPU tensors: float32 [Na, Nb], both pools read as stored. float64 and
    C above 128 go to the reference."""
    import torch

    from . import reference

    if not _takes_pair_pass(a, "pairwise_mutual_information"):
        return reference.pairwise_mutual_information(a, b, entropies_ab)
    b = a if b is None else b.to(a.dtype)
    if entropies_ab is None:
        entropies_ab = (entropies(a)[0], entropies(b)[0])
    entropy_a, entropy_b = (h.to(torch.float32).contiguous() for h in entropies_ab)
    out = torch.empty((a.shape[0], b.shape[0]), dtype=torch.float32)
    _module_for(a.device).pairwise_mutual_information(*_pool(a), entropy_a.data_ptr(), b.data_ptr(), *b.stride(),
                                                      entropy_b.data_ptr(), out.data_ptr(), a.shape[0], b.shape[0],
                                                      *a.shape[1:])
    return out


def epig(log_probs, target_log_probs, entropies_pt, target_weights):
    """:func:`kbald_kernels.reference.epig` on the host C++ module for CPU tensors:
    float32 [N], each pool point read once (as stored) against every target, in a
    fixed order; any C. float64 goes to the reference."""
    import torch

    from . import reference

    if log_probs.device.type != "cpu":
        raise ValueError(f"the host twin of epig takes CPU tensors, got {log_probs.device}")
    if log_probs.dtype == torch.float64:
        return reference.epig(log_probs, target_log_probs, entropies_pt, target_weights)
    entropy, target_entropy, weights, targets = (
        t.to(torch.float32).contiguous() for t in (*entropies_pt, target_weights, target_log_probs))
    out = torch.full((log_probs.shape[0],), math.nan, dtype=torch.float32)
    _module_for(log_probs.device).epig(*_pool(log_probs), entropy.data_ptr(), targets.data_ptr(),
                                       target_entropy.data_ptr(), weights.data_ptr(), targets.shape[0],
                                       out.data_ptr(), *log_probs.shape)
    return out


def kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps):
    """:func:`kbald_kernels.reference.kbald_pairwise_steps` with each step's pass over
    the pool (I[Y_n; Y_newest] for every n) on the host C++ module, for CPU tensors.

    fp32/fp16/bf16 and strided input are read as stored; float64 and C above 128 go
    to the reference.
    """
    import torch

    from . import reference

    if not _takes_pair_pass(log_probs, "the 2-BALD step"):
        return reference.kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps)
    entropy = entropy.to(torch.float32).contiguous()
    mutual_information = torch.empty(log_probs.shape[0], dtype=torch.float32)
    indices = torch.full((n_steps,), -1, dtype=torch.int64)
    scores = torch.full((n_steps,), math.nan, dtype=increment.dtype)
    for slot in range(n_steps):
        if newest is not None:
            _mutual_information_with(log_probs, entropy, int(newest), mutual_information)
            increment -= mutual_information.to(increment.dtype)
        newest = int(torch.argmax(torch.where(selected, -torch.inf, increment)))
        selected[newest] = True
        indices[slot] = newest
        scores[slot] = increment[newest]
    return indices, scores


def kmeanspp_steps(embeddings, min_distances, selected, newest, seed, first_step, n_steps, mode="sample"):
    """:func:`kbald_kernels.reference.kmeanspp_steps` on the host C++ module for CPU
    tensors (same arguments and results): embeddings read as stored (float32,
    float16, bfloat16; rows with a unit feature stride keep theirs), the same Philox
    stream. float64 goes to the reference."""
    import torch

    from . import reference

    if min_distances.device.type != "cpu":
        raise ValueError(f"the host twin of kmeanspp_steps takes CPU tensors, got {min_distances.device}")
    if min_distances.dtype == torch.float64:
        return reference.kmeanspp_steps(embeddings, min_distances, selected, newest, seed, first_step, n_steps, mode)
    if isinstance(embeddings, reference.DenseEmbeddings):
        x, r = _unit_feature_stride(embeddings.x), None
    else:
        x, r = _unit_feature_stride(embeddings.features), _unit_feature_stride(embeddings.residuals)
    indices = torch.empty(n_steps, dtype=torch.int64)
    scores = torch.empty(n_steps, dtype=torch.float32)
    _module_for(x.device).kmeanspp_steps(
        x.data_ptr(), _POOL_TYPES[str(x.dtype)], x.stride(0), x.shape[1],
        0 if r is None else r.data_ptr(), 0 if r is None else r.stride(0), 0 if r is None else r.shape[1],
        x.shape[0], min_distances.data_ptr(), selected.view(torch.uint8).data_ptr(),
        -1 if newest is None else int(newest), seed & (2**64 - 1), first_step, n_steps, mode == "argmax",
        indices.data_ptr(), scores.data_ptr())
    return indices, scores


def _unit_feature_stride(t):
    return t if t.stride(1) == 1 else t.contiguous()

