"""Whole public calls on a large fp16/bf16 CPU pool need no more than the workspace
plus O(N) vectors: no whole-pool float32 copy, no copy per pick.

The pool is 400 bytes a point (K=20, C=10 at 16 bits; embeddings D=200), so a
converted copy of it would cost 800 bytes a point, far past the budget below.
"""

import pytest

from peak_memory import CALLS, peak_extra_bytes

# Pools of hundreds of MB in fresh processes: the slow tier.
pytestmark = pytest.mark.slow

POINTS = 400_000
WORKSPACE = 32 * 2**20
# O(N): a few dozen bytes a point of float32/float64/int64 vectors (scores, running
# increments, distances, flags, sort keys); plus slack for the allocator and threads.
PER_POINT = 64
SLACK = 48 * 2**20


@pytest.mark.parametrize("dtype,call", [("float16", call) for call in CALLS] + [
    ("bfloat16", call) for call in ("bald", "select_kbald(order=2)", "select_batchbald")])
def test_peak_extra_memory_is_the_workspace_plus_o_of_n(dtype, call):
    result = peak_extra_bytes(call, POINTS, dtype, workspace=WORKSPACE)
    budget = WORKSPACE + PER_POINT * POINTS + SLACK
    operand = result["embeddings"] if call in ("select_badge", "kmeanspp") else result["pool"]
    assert operand >= 150 * 2**20  # large enough that a copy cannot hide in the budget
    assert result["extra"] <= budget, (
        f"{call} on a {operand / 2**20:.0f} MiB {dtype} pool took {result['extra'] / 2**20:.1f} MiB extra, "
        f"over the workspace plus O(N) ({budget / 2**20:.0f} MiB)")


# P5 (CIFAR-100: K=20, C=100) at its full 50 000 points, and P6 (ImageNet subsets: K=10,
# C=1 000) at a tenth of its points: 200 MB fp16 pools either way; BADGE with H=512
# features beside the C residuals.
LARGE_CLASS_POOLS = {"P5": (50_000, 20, 100), "P6": (10_000, 10, 1000)}


@pytest.mark.parametrize("pool", LARGE_CLASS_POOLS)
@pytest.mark.parametrize("call", ["bald", "select_kbald(order=2)", "select_batchbald", "select_badge"])
def test_peak_extra_memory_at_large_class_counts(pool, call):
    n, k, c = LARGE_CLASS_POOLS[pool]
    if call == "select_badge":  # 128 MiB of fp16 embeddings, so that a float32 copy could not hide
        n = max(n, 2**26 // (512 + c))
    result = peak_extra_bytes(call, n, "float16", workspace=WORKSPACE, samples=k, classes=c, features=512 + c)
    budget = WORKSPACE + PER_POINT * n + SLACK
    operand = result["embeddings"] if call == "select_badge" else result["pool"]
    assert 2 * operand > budget  # a float32 copy of the operand could not hide in the budget
    assert result["extra"] <= budget, (
        f"{call} on the {pool} pool ({operand / 2**20:.0f} MiB fp16) took {result['extra'] / 2**20:.1f} MiB extra, "
        f"over the workspace plus O(N) ({budget / 2**20:.0f} MiB)")
