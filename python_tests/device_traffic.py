"""What a call costs the device: kernel launches and device→host reads.

Counted from Python, so it works under the Triton interpreter on CPU tensors, where
nothing is launched or synchronised for real but the code takes the same path it
takes on a GPU:

* a launch is a Triton kernel launch or a torch op that runs a kernel (views,
  allocations and metadata ops launch nothing and are not counted);
* a read is anything that waits for the device to hand a value to the host:
  ``.item()``, ``int()``, ``float()``, ``bool()`` (all ``_local_scalar_dense``),
  ``.tolist()``, ``.numpy()``, a copy to the CPU, and the ops whose output size
  depends on the data (``nonzero``, boolean-mask indexing, ``masked_select``, …).

Ops run inside a Triton launch (the interpreter's own tensor work) are not counted;
the package's own ops (``torch.ops.kbald_kernels``) are counted by what they run.

``python python_tests/device_traffic.py`` prints launches and reads per pick of
every greedy loop on the Triton path.
"""

import contextlib
import os
import sys
from dataclasses import dataclass, field

if __name__ == "__main__":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Ops that launch no kernel: allocation, metadata, aliasing.
_FREE = {aten.empty.memory_format, aten.empty_strided.default, aten.empty_like.default, aten.detach.default,
         aten.lift_fresh.default, aten.alias.default, aten.set_.source_Storage_storage_offset,
         aten.resize_.default, aten.is_nonzero.default, aten.sym_size.int, aten.sym_stride.int,
         aten.sym_numel.default, aten.sym_storage_offset.default}
# Ops whose result the host must wait for.
_READS = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
          aten.unique_dim.default, aten._unique2.default, aten.unique_consecutive.default,
          aten.repeat_interleave.Tensor, aten.nonzero_static.default}


@dataclass
class DeviceTraffic:
    triton_launches: int = 0
    torch_launches: int = 0
    reads: int = 0
    read_ops: list = field(default_factory=list)

    @property
    def launches(self):
        return self.triton_launches + self.torch_launches


class _Counter(TorchDispatchMode):
    def __init__(self, traffic):
        super().__init__()
        self.traffic = traffic
        self.paused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "kbald_kernels":
            # One of our ops: count the work inside it, not the op as one launch.
            from kbald_kernels.library import IMPLEMENTATIONS

            with self:
                return IMPLEMENTATIONS[func._opname](*args, **kwargs)
        if not self.paused:
            self._count(func, args, kwargs)
        return func(*args, **kwargs)

    def _count(self, func, args, kwargs):
        if func in _READS or _is_bool_mask_index(func, args) or _is_copy_to_host(func, args, kwargs):
            self.traffic.reads += 1
            self.traffic.read_ops.append(str(func))
        if func in _FREE or func.is_view or func in _READS:
            return
        self.traffic.torch_launches += 1


def _is_bool_mask_index(func, args):
    if func not in (aten.index.Tensor, aten.index_put_.default, aten.index_put.default):
        return False
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None)


def _is_copy_to_host(func, args, kwargs):
    if func is aten._to_copy.default:
        device = kwargs.get("device")
        return device is not None and torch.device(device).type == "cpu" and args[0].device.type != "cpu"
    if func is aten.copy_.default:
        return args[0].device.type == "cpu" and args[1].device.type != "cpu"
    return False


@contextlib.contextmanager
def counted():
    """Counts launches and reads made inside the block into the yielded DeviceTraffic."""
    import triton
    from triton.runtime import interpreter, jit

    traffic = DeviceTraffic()
    counter = _Counter(traffic)
    patched = []

    def patch(owner, name, wrapper):
        original = getattr(owner, name)
        setattr(owner, name, wrapper(original))
        patched.append((owner, name, original))

    def launch(original):
        def run(self, *args, **kwargs):
            if kwargs.get("warmup"):
                return original(self, *args, **kwargs)
            traffic.triton_launches += 1
            counter.paused += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                counter.paused -= 1
        return run

    def host_read(original):
        def read(self, *args, **kwargs):
            if not counter.paused:
                traffic.reads += 1
                traffic.read_ops.append(original.__name__)
            return original(self, *args, **kwargs)
        return read

    assert triton is not None
    patch(interpreter.InterpretedFunction, "run", launch)
    patch(jit.JITFunction, "run", launch)
    for name in ("tolist", "numpy"):
        patch(torch.Tensor, name, host_read)
    try:
        with counter:
            yield traffic
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def per_pick(call, small, large):
    """(launches per pick, reads at ``small``, reads at ``large``) of ``call(batch_size)``:
    launches per pick from the difference, so per-call work cancels."""
    call(small)  # compile / import outside the count
    with counted() as a:
        call(small)
    with counted() as b:
        call(large)
    return (b.launches - a.launches) / (large - small), a.reads, b.reads, a, b


def greedy_loops(n_points=300, n_samples=8, n_classes=4, seed=0):
    """{name: call(batch_size)} for every greedy loop, on the Triton path (CPU tensors)."""
    import kbald_kernels as kb

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_points, n_samples, n_classes, generator=g) * 2
    log_probs = torch.log_softmax(logits + torch.randn(n_points, 1, n_classes, generator=g) * 2, -1)
    x = torch.randn(n_points, 12, generator=g)
    features, residuals = torch.randn(n_points, 6, generator=g), torch.randn(n_points, n_classes, generator=g)
    b = "triton"
    return {
        "2-BALD": lambda n: kb.select_kbald(log_probs, n, order=2, backend=b),
        "3-BALD": lambda n: kb.select_kbald(log_probs, n, order=3, backend=b),
        "dynamic (2)": lambda n: kb.select_kbald_dynamic(log_probs, n, tolerance=float("inf"), backend=b),
        "dynamic (3)": lambda n: kb.select_kbald_dynamic(log_probs, n, tolerance=float("inf"), order=3,
                                                         backend=b),
        "conservative": lambda n: kb.select_conservative_bald(log_probs, n, threshold=float("inf"), backend=b),
        "BatchBALD": lambda n: kb.select_batchbald(log_probs, n, num_samples=64, generator=0, backend=b),
        "k-means++": lambda n: kb.kmeanspp(x, n, generator=0, backend=b),
        "BADGE": lambda n: kb.select_badge((features, residuals), n, generator=0, backend=b),
        "CORESET": lambda n: kb.select_coreset(x, n, labeled=[0, 1], backend=b),
    }


if __name__ == "__main__":
    small, large = (int(v) for v in sys.argv[1:3]) if len(sys.argv) > 2 else (4, 12)
    print(f"| loop | launches / pick | reads at batch {small} | reads at batch {large} |")
    print("|---|---:|---:|---:|")
    for name, call in greedy_loops().items():
        launches, reads_small, reads_large, _, _ = per_pick(call, small, large)
        print(f"| {name} | {launches:.1f} | {reads_small} | {reads_large} |")
