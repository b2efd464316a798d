"""BatchBALD's joint-entropy accumulation on the CUDA kernel (CUDA tensors) or
the host C++ twin (CPU tensors)."""

from .modules import module_for, pool_arguments


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
        from ..reference import accumulate_joint_entropy as reference_accumulate

        return reference_accumulate(weights, alpha, log_probs)  # float64 is the oracle's
    device = log_probs.device
    if weights.device != device or alpha.device != device:
        raise ValueError(f"weights, alpha and log_probs must be on one device, got {weights.device}, "
                         f"{alpha.device}, {device}")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"log_probs must be on a CPU or CUDA device, got {device}")
    module = module_for(device)
    weights, alpha = _float32_weights(weights, alpha)
    out = torch.empty(n_points, dtype=torch.float32, device=device)
    sizes = (n_configs, n_points, n_samples, n_classes)
    if device.type == "cpu":
        module.accumulate_joint_entropy(weights.data_ptr(), alpha.data_ptr(), *pool_arguments(log_probs),
                                        out.data_ptr(), *sizes)
        return out
    with torch.cuda.device(device):
        # Each split keeps N·C double partial sums: as many splits as fill the device,
        # but no more than the workspace holds.
        from ..reference.workspace import workspace_bytes

        most = max(1, workspace_bytes() // (8 * n_points * n_classes))
        splits = min(module.joint_entropy_splits(n_configs, n_points, n_classes, device.index or 0), most)
        partial = torch.empty(splits, n_points * n_classes, dtype=torch.float64, device=device)
        stream = torch.cuda.current_stream(device).cuda_stream
        module.accumulate_joint_entropy(weights.data_ptr(), alpha.data_ptr(), *pool_arguments(log_probs),
                                        out.data_ptr(), partial.data_ptr(), *sizes, splits, stream)
    return out


def joint_entropy(log_probs, selected, num_samples=None, generator=None):
    """:func:`kbald_kernels.reference.joint_entropy` with the accumulation over
    configurations on the CUDA kernel or the host twin (see accumulate_joint_entropy)."""
    from ..reference import joint_entropy as reference_joint_entropy

    return reference_joint_entropy(log_probs, selected, num_samples, generator, accumulate=accumulate_joint_entropy)


def emulate_joint_entropy_kernel(weights, alpha, log_probs, splits):
    """The CUDA joint-entropy kernel's block program replayed on the host, thread by
    thread, for CPU tensors: checks the kernel's indexing where there is no GPU.
    float64 log_probs are rounded to float32, the widest type the kernel reads."""
    import torch

    if log_probs.dtype == torch.float64:
        log_probs = log_probs.float()

    module = module_for(torch.device("cpu"))
    weights, alpha = _float32_weights(weights, alpha)
    out = torch.empty(log_probs.shape[0], dtype=torch.float32)
    module.emulate_joint_entropy_kernel(weights.data_ptr(), alpha.data_ptr(), *pool_arguments(log_probs),
                                        out.data_ptr(), weights.shape[0], *log_probs.shape, splits)
    return out
