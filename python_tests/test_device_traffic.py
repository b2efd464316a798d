"""Greedy loops keep their state on the device (DESIGN.md, Inputs): a constant
number of launches per pick and no device→host read per pick. Counted on the
Triton path under the interpreter (device_traffic.py); the budgets are what the
loops cost today, so a change that adds a launch or a read per pick fails here."""

import math

import pytest

import device_traffic

SMALL, LARGE = 4, 12

# loop: (launches per pick at most, reads per call at most, reads grow with log2(batch))
BUDGETS = {
    "2-BALD": (2, 1, False),
    "3-BALD": (14, 1, False),
    "dynamic (2)": (20, 2, True),
    "dynamic (3)": (20, 2, True),
    "conservative": (22, 3, True),
    # Validation, and one read per exact extension of the configurations (the count of
    # nonzero ones): at most log_C(num_samples) + 1 of them whatever the batch.
    "BatchBALD": (28, 4, False),
    "k-means++": (2, 2, False),
    "BADGE": (2, 5, False),
    "CORESET": (2, 6, False),
}


@pytest.fixture(scope="module")
def loops():
    return device_traffic.greedy_loops()


@pytest.mark.parametrize("name", BUDGETS)
def test_greedy_loop_stays_within_its_launch_and_read_budget(loops, name):
    launches_per_pick, reads_small, reads_large, small, large = device_traffic.per_pick(loops[name], SMALL, LARGE)
    most_launches, most_reads, logarithmic = BUDGETS[name]
    print(f"{name}: {launches_per_pick:.1f} launches a pick; reads {reads_small} at batch {SMALL}, "
          f"{reads_large} at {LARGE}: {large.read_ops}")
    assert launches_per_pick <= most_launches
    assert small.launches > 0 and large.launches > small.launches  # the counter sees the loop
    if logarithmic:
        for batch, reads in ((SMALL, reads_small), (LARGE, reads_large)):
            assert reads <= most_reads + math.ceil(math.log2(batch)) + 1, f"{reads} reads at batch {batch}"
    else:
        assert reads_small == reads_large <= most_reads


def test_the_counter_sees_reads_and_launches():
    import torch

    x = torch.arange(10.0)
    with device_traffic.counted() as traffic:
        y = x * 2 + 1
        int(y.argmax())
        y.tolist()
        y[y > 3]
    assert traffic.reads == 3 and traffic.torch_launches >= 4


def _unspecialised(kernel):
    """The parameters a jitted kernel does not specialise: the interpreter keeps them
    in ``kwargs``, the compiler in ``do_not_specialize``."""
    names = getattr(kernel, "kwargs", {}).get("do_not_specialize") or getattr(kernel, "do_not_specialize", None)
    return set(names or [])


@pytest.mark.parametrize("module,kernel,scalars", [
    ("select_candidate", "select_candidate_kernel", {"slot"}),
    ("kmeanspp_step", "_step_kernel", {"step", "seed_lo", "seed_hi"}),
    ("kbald_step", "_triple_kernel", {"n_earlier"}),
])
def test_scalars_that_change_per_step_are_not_specialised(module, kernel, scalars):
    import importlib

    fn = getattr(importlib.import_module(f"kbald_kernels.triton.{module}"), kernel)
    assert scalars <= _unspecialised(fn)
