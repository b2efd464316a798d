"""Whole public calls on a large fp16/bf16 CPU pool need no more than the workspace
plus O(N) vectors: no whole-pool float32 copy, no copy per pick.

The pool is 400 bytes a point (K=20, C=10 at 16 bits; embeddings D=200), so a
converted copy of it would cost 800 bytes a point, far past the budget below.
"""

import pytest

from peak_memory import CALLS, peak_extra_bytes

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
