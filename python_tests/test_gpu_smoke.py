"""Every kernel once on CUDA tensors, natively, against the reference: the first
tests a lent GPU runs (``pytest -m gpu_smoke``, stage "smoke" of python -m bench.gpu).

Each op of torch.ops.kbald_kernels that has a GPU kernel runs through it on a
P1-sized pool (N=60 000, K=100, C=10, float32) and an odd one (N=1 237, K=7, C=3),
and through the reference on the same input (float64; float32 for the greedy
steps, whose picks must then be the same); values agree to float32 rounding.
"""

import math

import pytest
import torch

import kbald_kernels  # noqa: F401  (registers the ops)

pytestmark = [pytest.mark.gpu_smoke,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="the native smoke set needs a CUDA device")]

ops = torch.ops.kbald_kernels
SHAPES = {"P1": (60_000, 100, 10), "odd": (1_237, 7, 3)}


def pool(shape, seed=0):
    n, k, c = shape
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, c, generator=g) * 2 + torch.randn(n, 1, c, generator=g) * 2
    return logits.log_softmax(-1).cuda()


def _close(got, want, atol=2e-4):
    torch.testing.assert_close(got.double(), want.double(), rtol=1e-4, atol=atol)


def information_terms(lp):
    for op, count in ((ops.entropies, 2), (ops.uncertainties, 4)):
        got, want = op(lp, "triton"), op(lp.double(), "torch")
        assert not bool(got[-1]) and not bool(want[-1])
        for g, w in zip(got[:count], want[:count]):
            _close(g, w)


def pairwise(lp):
    a, b = lp[:300], lp[-257:]
    _close(ops.pairwise_mutual_information(a, b, "triton"), ops.pairwise_mutual_information(a.double(), b.double(),
                                                                                            "torch"))


def epig(lp):
    targets = lp[:100]
    _close(ops.epig(lp, targets, None, "triton"), ops.epig(lp.double(), targets.double(), None, "torch"))


def kbald_steps(lp):
    results = []
    for x, backend in ((lp, "triton"), (lp, "torch")):
        h, ch, _ = ops.entropies(x, backend)
        selected = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        results.append(ops.kbald_pairwise_steps(x, h, (h - ch).clone(), selected, None, 10, backend))
    assert torch.equal(results[0][0], results[1][0])
    _close(results[0][1], results[1][1])


def mutual_information_with_pick(lp):
    pick = torch.tensor([lp.shape[0] // 2], device=lp.device)
    got = ops.mutual_information_with_pick(lp, ops.entropies(lp, "triton")[0], pick, "triton")
    x = lp.double()
    _close(got, ops.mutual_information_with_pick(x, ops.entropies(x, "torch")[0], pick, "torch"))


def triples(lp):
    lp = lp[:5000]
    picks = torch.tensor([3, 17, 40], device=lp.device)
    results = []
    for x, backend in ((lp, "triton"), (lp.double(), "torch")):
        h = ops.entropies(x, backend)[0]
        pairs = torch.stack([h + h[p] - ops.mutual_information_with_pick(x, h, p.view(1), backend) for p in picks])
        triple = torch.zeros_like(h)
        ops.add_triple_interactions(x, h, pairs, picks, triple, backend)
        results.append(triple)
    _close(*results, atol=1e-3)


def joint_entropy(lp):
    selected = torch.tensor([1, 5, 9], device=lp.device)
    _close(ops.joint_entropy(lp, selected, None, None, "cuda"), ops.joint_entropy(lp.double(), selected, None, None,
                                                                                  "torch"))


def accumulate_joint_entropy(lp):
    g = torch.Generator().manual_seed(3)
    weights = torch.rand(64, lp.shape[1], generator=g).softmax(-1).cuda()
    alpha = torch.full((64,), 1 / 64, device="cuda")
    _close(ops.accumulate_joint_entropy(weights, alpha, lp, "cuda"),
           ops.accumulate_joint_entropy(weights.double(), alpha.double(), lp.double(), "torch"))


def kmeanspp(lp):
    n = lp.shape[0]
    dense = lp[:, :4].flatten(1)
    features, residuals = lp[:, 0], lp[:, 1].exp()
    for parts in ([dense], [features, residuals]):
        results = []
        for backend in ("triton", "torch"):
            distances = torch.full((n,), math.inf, device="cuda")
            selected = torch.zeros(n, dtype=torch.bool, device="cuda")
            results.append(ops.kmeanspp_steps(parts, distances, selected, None, 7, 0, 20, "sample", backend))
            results.append((ops.min_squared_distances(parts, [p[:5] for p in parts], backend),))
        assert torch.equal(results[0][0], results[2][0])
        _close(results[0][1], results[2][1], atol=1e-2)
        _close(results[1][0], results[3][0], atol=1e-2)


KERNELS = {f.__name__: f for f in (information_terms, pairwise, epig, kbald_steps, mutual_information_with_pick,
                                   triples, joint_entropy, accumulate_joint_entropy, kmeanspp)}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_on_cuda_tensors_matches_the_reference(name):
    for shape in SHAPES.values():
        KERNELS[name](pool(shape))
