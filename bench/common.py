"""Timing and device-ceiling helpers shared by the benchmark reports."""

import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch

# python -m bench.gpu points this at its dated folder.
RESULTS = Path(os.environ.get("KBALD_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def once(fn, device):
    """Wall time in seconds of one ``fn()``, the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def measure(fn, device, repeats=5, warmup=1, budget_s=None):
    """Median wall time in seconds of ``fn()`` after ``warmup`` calls, synchronising the device.

    With ``budget_s``, stops repeating once that much time has been spent (at least one run).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        times.append(once(fn, device))
        if budget_s is not None and sum(times) > budget_s:
            break
    return statistics.median(times)


def measure_pair(fn_a, fn_b, device, pairs=101, warmup=3):
    """(median time of ``fn_a``, of ``fn_b``, median of the ratios a/b pair by pair) in
    seconds, the two run in turn (a, b, a, b, …): a load or a clock that drifts during
    the run then weighs on both sides of each ratio alike."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times = [(once(fn_a, device), once(fn_b, device)) for _ in range(pairs)]
    return (statistics.median(a for a, _ in times), statistics.median(b for _, b in times),
            statistics.median(a / b for a, b in times))


def compiled(fn):
    """``fn`` under torch.compile (inductor, static shapes): the naive formula as the
    strongest thing a user writes today. Its first call, in ``measure``'s warm-up, compiles."""
    return torch.compile(fn, dynamic=False)


def duration(seconds):
    """A time as a report cell: ms below a second, s below 10 min, min below 10 h, else h."""
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 600:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.0f} min" if seconds < 36_000 else f"{seconds / 3600:.0f} h"


def ran_on(op, device):
    """What backend="auto" runs ``op`` on for ``device``'s tensors, in words ("host C++", "Triton", …)."""
    from kbald_kernels.backends import choose_backend, path_name

    return path_name(choose_backend(op, "auto", device), device)


def device_name(device):
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def memory_bandwidth(device, megabytes=256):
    """Measured bytes/s of a large device-to-device copy (read + write)."""
    n = megabytes * 2**20 // 4
    src = torch.empty(n, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    seconds = measure(lambda: dst.copy_(src), device, repeats=5)
    return 2 * src.numel() * 4 / seconds


def slug(text):
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower()


def processor_model():
    """The CPU's model name (Linux's /proc/cpuinfo), which the report's file name
    leaves out: two machines of one kind may have different processors."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_isa():
    """The instruction set the host C++ vector loops (the one pass, the pair joint
    entropies, EPIG) run at; None without the module."""
    from kbald_kernels.native.modules import host_module

    module = host_module()
    return None if isinstance(module, str) else module.host_isa()


def write_report(name, device, title, header, rows, notes, extra=None):
    """Write bench/results/<name>-<device>.md and .json; returns the Markdown text.
    A run with KBALD_HOST_ISA set (the host vector loops held to a lower instruction set) adds
    that set to the file name, so it does not overwrite the processor's own report."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    dev = device_name(device)
    processor = processor_model()
    isa = host_isa() if torch.device(device).type == "cpu" else None
    lines = [f"# {title}", "", f"Device: {dev}; processor {processor}"
             + (f"; host vector loops at {isa}" if isa else "")
             + f". Date: {date.today().isoformat()}. torch {torch.__version__}.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lines += [""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    stem = RESULTS / f"{name}-{slug(dev)}" if not (isa and os.environ.get("KBALD_HOST_ISA")) else (
        RESULTS / f"{name}-{slug(dev)}-host-{isa}")
    stem.with_suffix(".md").write_text(text)
    payload = {"title": title, "device": dev, "processor": processor, "host_isa": isa, "date": date.today().isoformat(),
               "torch": torch.__version__,
               "header": header, "rows": rows, "notes": notes, **(extra or {})}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    return text
