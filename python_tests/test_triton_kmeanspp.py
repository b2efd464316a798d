"""The fused Triton k-means++ / k-center step against the reference (interpreter on CPU)."""

import math

import pytest
import torch
import triton
import triton.language as tl

import kbald_kernels as kb
from kbald_kernels import reference
from kbald_kernels.triton import kmeanspp_step as fused
from kbald_kernels.triton.philox import gumbel_noise

from conftest import DEVICE

DTYPES = [(torch.float32, 1e-5), (torch.float16, 1e-5), (torch.bfloat16, 1e-5), (torch.float64, 1e-12)]


@triton.jit
def _noise_kernel(out_ptr, seed_lo, seed_hi, step, n, DTYPE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, gumbel_noise(seed_lo, seed_hi, step, offs, DTYPE), mask=offs < n)


@pytest.mark.parametrize("seed,step", [(0, 0), (2**40 + 12345, 7), (2**64 - 1, 999)])
def test_triton_noise_is_the_reference_stream(seed, step):
    n = 300
    out = torch.full((n,), math.nan, dtype=torch.float64, device=DEVICE)
    _noise_kernel[(triton.cdiv(n, 128),)](out, seed & 0xFFFFFFFF, seed >> 32, step, n, DTYPE=tl.float64, BLOCK=128)
    expected = reference.gumbel_noise(seed, step, torch.arange(n))
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-12, atol=1e-12)


def make_embeddings(factored, n, width, dtype):
    if factored:
        features = torch.randn(n, width, dtype=torch.float64)
        residuals = torch.randn(n, max(1, width // 3), dtype=torch.float64)
        return reference.FactoredEmbeddings(features.to(DEVICE, dtype), residuals.to(DEVICE, dtype))
    return reference.DenseEmbeddings(torch.randn(n, width, dtype=torch.float64).to(DEVICE, dtype))


@pytest.mark.parametrize("factored", [False, True])
@pytest.mark.parametrize("n,width", [(1, 1), (7, 5), (129, 67)])
@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_fused_steps_equal_the_reference(factored, n, width, dtype, tol, mode):
    emb = make_embeddings(factored, n, width, dtype)
    steps = min(n, 4)
    states = []
    for impl in (reference.kmeanspp_steps, fused.kmeanspp_steps):
        min_distances = torch.full((n,), math.inf, dtype=emb.dtype, device=DEVICE)
        selected = torch.zeros(n, dtype=torch.bool, device=DEVICE)
        indices, scores = impl(emb, min_distances, selected, None, 1234, 0, steps, mode)
        states.append((indices, scores, min_distances, selected))
    (ri, rs, rd, rsel), (ti, ts, td, tsel) = states
    assert ti.tolist() == ri.tolist()
    torch.testing.assert_close(ts, rs, rtol=tol, atol=tol)
    torch.testing.assert_close(td, rd, rtol=tol, atol=tol)
    assert torch.equal(tsel, rsel)


@pytest.mark.parametrize("factored", [False, True])
def test_min_squared_distances_match_the_reference(factored):
    emb = make_embeddings(factored, 70, 13, torch.float32)
    centers = emb.take(torch.tensor([3, 69, 10, 3], device=DEVICE))
    torch.testing.assert_close(fused.min_squared_distances(emb, centers), reference.min_squared_distances(emb, centers),
                               rtol=1e-5, atol=1e-5)
    assert bool((fused.min_squared_distances(emb, centers)[[3, 10, 69]] == 0).all())
    assert bool(torch.isinf(fused.min_squared_distances(emb, emb.take(slice(0, 0)))).all())


@pytest.mark.parametrize("factored", [False, True])
def test_full_ordering_with_duplicates_is_a_permutation(factored):
    base = torch.randn(5, 4, device=DEVICE)
    base_r = torch.randn(5, 3, device=DEVICE)
    rows = torch.tensor([0, 1, 2, 3, 4, 0, 0, 2, 4, 4, 1], device=DEVICE)
    pool = (base[rows], base_r[rows]) if factored else base[rows]
    order = kb.kmeanspp(pool, None, generator=9, backend="triton")
    assert sorted(order.indices.tolist()) == list(range(len(rows)))
    first_five = {int(rows[i]) for i in order.indices[:5]}
    assert first_five == set(range(5)), "a duplicate of a center was drawn while d > 0 remained"
    assert bool((order.scores[5:] == 0).all())
    same = torch.ones(6, 2, device=DEVICE)
    assert sorted(kb.kmeanspp(same, -1, generator=1, backend="triton").indices.tolist()) == list(range(6))


def test_coreset_and_badge_match_the_reference_backend():
    x = torch.randn(90, 6, device=DEVICE)
    for select, kwargs in ((kb.select_coreset, {"labeled": [4, 50]}), (kb.select_coreset, {}),
                           (kb.select_badge, {}), (kb.kmeanspp, {"labeled": torch.randn(3, 6, device=DEVICE)})):
        a = select(x, 6, generator=21, backend="torch", **kwargs)
        b = select(x, 6, generator=21, backend="triton", **kwargs)
        assert a.indices.tolist() == b.indices.tolist(), select.__name__
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-5, atol=1e-5)


def test_lazy_ordering_extend_and_resume_match_the_reference_backend():
    pool = (torch.randn(40, 8, device=DEVICE), torch.randn(40, 4, device=DEVICE))
    more = (torch.randn(9, 8, device=DEVICE), torch.randn(9, 4, device=DEVICE))
    picks = {}
    for backend in ("torch", "triton"):
        ordering = kb.KMeansPPOrdering(pool, generator=5, first="max_norm", backend=backend)
        first = [next(ordering)[0] for _ in range(3)]
        ordering.extend(more)
        state = ordering.state_dict()
        rest = ordering.take(5).indices.tolist()
        grown = (torch.cat([pool[0], more[0]]), torch.cat([pool[1], more[1]]))
        resumed = kb.KMeansPPOrdering(grown, backend=backend)
        resumed.load_state_dict(state)
        assert resumed.take(5).indices.tolist() == rest
        picks[backend] = first + rest
    assert picks["torch"] == picks["triton"]


def test_auto_uses_the_kernel_only_for_cuda_tensors():
    from kbald_kernels.backends import choose_backend

    assert choose_backend("kmeanspp_steps", "auto", torch.device("cpu")) == "cuda"  # the host twin
    assert choose_backend("min_squared_distances", "auto", torch.device("cpu")) == "cuda"
    if torch.cuda.is_available():
        assert choose_backend("kmeanspp_steps", "auto", torch.device("cuda")) == "triton"
