"""Peak extra memory of whole public calls on a large fp16/bf16 CPU pool.

Each call runs in a fresh process: the pool is built, the call is warmed up on a
tiny pool (imports, thread pools), the kernel's peak-RSS mark is reset
(/proc/self/clear_refs), the call runs, and the peak minus the resident size before
it is the extra memory the call needed. A float32 copy of an fp16 pool shows as
twice the pool; the budget allows the workspace plus O(N) vectors.

    python python_tests/peak_memory.py [--points N] [--dtype float16|bfloat16]

prints one row per call (the numbers quoted in issue notes).
"""

import argparse
import json
import os
import subprocess
import sys

CALLS = {
    "bald": "kb.bald(pool)",
    "select_kbald(order=2)": "kb.select_kbald(pool, 3, order=2)",
    "select_kbald(order=3)": "kb.select_kbald(pool, 3, order=3)",
    "select_stochastic_bald": "kb.select_stochastic_bald(pool, 3, generator=0)",
    "select_batchbald": "kb.select_batchbald(pool, 3, num_samples=1000, generator=0)",
    "select_badge": "kb.select_badge((features, residuals), 3, generator=0)",
    "kmeanspp": "kb.kmeanspp(embeddings, 3, generator=0)",
}

SAMPLES, CLASSES, FEATURES = 20, 10, 200

_CHILD = r"""
import json, sys
import torch
import kbald_kernels as kb

call, n, dtype = sys.argv[1], int(sys.argv[2]), getattr(torch, sys.argv[3])
K, C, D = (int(v) for v in sys.argv[4:7])


def make(n):
    # Built chunk by chunk, so that no float32 pool-sized temporary inflates the baseline.
    g = torch.Generator().manual_seed(0)
    pool = torch.empty(n, K, C, dtype=dtype)
    embeddings = torch.empty(n, D, dtype=dtype)
    for i in range(0, n, 65536):
        rows = min(65536, n - i)
        pool[i : i + rows] = torch.log_softmax(torch.randn(rows, K, C, generator=g) * 2, -1)
        embeddings[i : i + rows] = torch.randn(rows, D, generator=g)
    return pool, embeddings, embeddings[:, : D - C], embeddings[:, D - C :]


def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field + " missing from /proc/self/status")


pool, embeddings, features, residuals = make(64)
eval(call)
pool, embeddings, features, residuals = make(n)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
eval(call)
print(json.dumps({"extra": status("VmHWM") - before, "pool": pool.nbytes, "embeddings": embeddings.nbytes}))
"""


def peak_extra_bytes(call, n_points, dtype="float16", workspace=None, samples=SAMPLES, classes=CLASSES,
                     features=FEATURES):
    """{"extra", "pool", "embeddings"} in bytes for one call of CALLS, measured in a fresh process, on a
    pool [n_points, samples, classes] and embeddings [n_points, features] (BADGE: the last ``classes``
    columns are the residuals, the rest the features)."""
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    if workspace is not None:
        env["KBALD_WORKSPACE_BYTES"] = str(workspace)
    shape = (str(samples), str(classes), str(features))
    out = subprocess.run([sys.executable, "-c", _CHILD, CALLS[call], str(n_points), dtype, *shape], env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{call} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--dtype", default="float16", choices=("float16", "bfloat16"))
    args = parser.parse_args()
    mib = 2**20
    print(f"N={args.points}, K={SAMPLES}, C={CLASSES}, D={FEATURES}, {args.dtype}, default workspace")
    for call in CALLS:
        result = peak_extra_bytes(call, args.points, args.dtype)
        operand = result["embeddings"] if call in ("select_badge", "kmeanspp") else result["pool"]
        print(f"{call:24s} input {operand / mib:7.0f} MiB   peak extra {result['extra'] / mib:7.1f} MiB")


if __name__ == "__main__":
    main()
