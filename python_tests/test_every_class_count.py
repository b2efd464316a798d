"""Every Triton kernel and host twin at every class count the benchmarks use, from
C = 2 to ImageNet's 1 000, against the float64 reference (interpreter on CPU).

Past the kernels' class block (128 rows for pairwise MI and the 2-BALD step, 64 for
EPIG and the triple update) the classes go block by block; C = 257 and 1 000 take
that path, C = 100 the one-block tile. The triple update costs C³ logarithms per
point and pick, so at C = 257 and 1 000 the interpreter runs it with wider blocks
(the same program and block loops, fewer and larger chunks); the compile check
builds the real blocks at C = 1 000.
"""

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import native, reference
from kbald_kernels.triton import epig, information_terms, kbald_step, pairwise_mutual_information

from conftest import DEVICE, random_log_probs

WIDE = [257, 1000]
# The wide counts take the kernels' class blocks; under the interpreter they are the
# slowest sweeps, so they run in the slow tier (CI runs it after the README's command).
CLASS_COUNTS = [2, 10, 33, 100, *(pytest.param(c, marks=pytest.mark.slow) for c in WIDE)]
LARGE = [100, pytest.param(1000, marks=pytest.mark.slow)]
# Fewer pool points at large C, where the interpreter's cost is per (point, class block pair).
POINTS = {2: 9, 10: 9, 33: 7, 100: 5, 257: 4, 1000: 3}


def _pool(c, n=None, k=5, dtype=torch.float32):
    return random_log_probs(POINTS[c] if n is None else n, k, c, dtype=dtype, zeros=True)


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float16, 2e-3)])
def test_information_terms_at_every_class_count(c, dtype, tol):
    lp = _pool(c, dtype=dtype)
    expected = reference.uncertainties(lp.double())
    for kernel in (information_terms, native):
        got = kernel.uncertainties(lp)
        for name, g, e in zip(("entropy", "conditional", "least confidence", "margin"), got, expected):
            torch.testing.assert_close(g.double(), e, rtol=tol, atol=tol, msg=f"{kernel.__name__}: {name}")
        assert int(got[4]) == 0


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_pairwise_mutual_information_at_every_class_count(c):
    lp = _pool(c)
    expected = reference.pairwise_mutual_information(lp.double())
    symmetric = pairwise_mutual_information.pairwise_mutual_information(lp)
    torch.testing.assert_close(symmetric.double(), expected, rtol=1e-4, atol=2e-5)
    block = pairwise_mutual_information.pairwise_mutual_information(lp[:2], lp[1:])
    torch.testing.assert_close(block.double(), expected[:2, 1:], rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_epig_at_every_class_count(c):
    lp = _pool(c)
    targets = random_log_probs(2 if c in WIDE else 5, lp.shape[1], c, dtype=torch.float32)
    entropies = (reference.entropies(lp.double())[0], reference.entropies(targets.double())[0])
    weights = torch.softmax(torch.randn(targets.shape[0], dtype=torch.float64), 0).to(DEVICE)
    expected = reference.epig(lp.double(), targets.double(), entropies, weights)
    got = epig.epig(lp, targets, entropies, weights)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(native.epig(lp, targets, entropies, weights).double(), expected, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_mutual_information_with_pick_and_2_bald_steps_at_every_class_count(c):
    lp = _pool(c)
    n = lp.shape[0]
    entropy, conditional = (h.float() for h in reference.entropies(lp.double())[:2])
    pick = torch.tensor([n // 2], device=DEVICE)
    expected = reference.mutual_information_with_pick(lp.double(), entropy.double(), pick)
    got = kbald_step.mutual_information_with_pick(lp, entropy, pick)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=2e-5)
    results = []
    for impl in (reference.kbald_pairwise_steps, kbald_step.kbald_pairwise_steps):
        increment = entropy - conditional
        selected = torch.zeros(n, dtype=torch.bool, device=DEVICE)
        indices, scores = impl(lp, entropy, increment, selected, None, n)
        results.append((indices.tolist(), scores, increment))
    (ri, rs, rinc), (ti, ts, tinc) = results
    assert ti == ri
    torch.testing.assert_close(ts, rs.float(), rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(tinc, rinc.float(), rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("c", CLASS_COUNTS)
@pytest.mark.parametrize("order", [1, 2])
def test_select_kbald_picks_the_reference_batch_at_every_class_count(c, order):
    lp = _pool(c, n=POINTS[c] + 2)
    expected = kb.select_kbald(lp, 3, order=order, backend="torch")
    for backend in ("triton", "cuda"):  # "cuda" runs CPU tensors on the host twins
        got = kb.select_kbald(lp, 3, order=order, backend=backend)
        assert got.indices.tolist() == expected.indices.tolist(), backend
        torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=2e-5)


def _triple_case(c):
    n = 2 if c in WIDE else 4
    lp = _pool(c, n=n, k=2 if c in WIDE else 3)
    entropy = reference.entropies(lp.double())[0].float()
    picks = torch.tensor([n - 1, 0] if n == 2 else [n - 1, 0, 1], device=DEVICE)
    pair_entropies = torch.stack([
        entropy + entropy[p] - reference.pairwise_mutual_information(lp.double(), lp[p : p + 1].double())[:, 0].float()
        for p in picks.tolist()])
    return lp, entropy, pair_entropies, picks


@pytest.mark.parametrize("c", [c if c != 100 else pytest.param(100, marks=pytest.mark.slow) for c in CLASS_COUNTS])
def test_triple_interaction_update_at_every_class_count(c, monkeypatch):
    if c in WIDE:
        monkeypatch.setattr(kbald_step, "TRIPLE_TILE", 256)
        monkeypatch.setattr(kbald_step, "PAIR_BLOCK", 4096)
    lp, entropy, pair_entropies, picks = _triple_case(c)
    start = torch.randn(lp.shape[0], device=DEVICE)
    expected = reference.add_triple_interactions(lp.double(), entropy.double(), pair_entropies.double(), picks,
                                                 start.double())
    got = kbald_step.add_triple_interactions(lp, entropy, pair_entropies, picks, start.clone())
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=5e-5)
    host = native.add_triple_interactions(lp, entropy, pair_entropies, picks, start.clone())
    torch.testing.assert_close(host.double(), expected, rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("c", [2, 10, 33, pytest.param(100, marks=pytest.mark.slow)])
def test_select_kbald_order_3_picks_the_reference_batch(c):
    lp = _pool(c, n=5, k=3)
    expected = kb.select_kbald(lp, 3, order=3, backend="torch")
    for backend in ("triton", "cuda"):  # "cuda" runs CPU tensors on the host twins
        got = kb.select_kbald(lp, 3, order=3, backend=backend)
        assert got.indices.tolist() == expected.indices.tolist(), backend
        torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("c", LARGE)
def test_batchbald_configurations_switch_to_sampling_at_large_class_counts(c):
    from kbald_kernels.reference.joint_entropy import empty_configurations, extend_configurations

    lp = _pool(c, n=3, k=4).double()
    gen = torch.Generator().manual_seed(0)
    configs = extend_configurations(empty_configurations(4), lp[0], 2000, gen)
    # C labels of one point are C exact configurations (those of probability 0 dropped).
    assert configs.exact and 0 < configs.weights.shape[0] <= c
    configs = extend_configurations(configs, lp[1], 2000, gen)
    # C² > 2 000 either way: the second pick is sampled, 2 000 configurations, never C².
    assert not configs.exact and configs.weights.shape == (2000, 4)
    configs = extend_configurations(configs, lp[2], 2000, gen)
    assert not configs.exact and configs.weights.shape == (2000, 4)


@pytest.mark.parametrize("c", LARGE)
def test_joint_entropy_accumulation_takes_n_c_columns_at_large_class_counts(c):
    gen = torch.Generator().manual_seed(c)
    lp = random_log_probs(5, 6, c, zeros=True, generator=gen, device="cpu")
    weights = torch.rand(40, 6, dtype=torch.float64, generator=gen) ** 3
    weights /= weights.sum(1, keepdim=True)
    alpha = torch.rand(40, dtype=torch.float64, generator=gen)
    alpha /= alpha.sum()
    expected = reference.accumulate_joint_entropy(weights, alpha, lp)
    host = native.accumulate_joint_entropy(weights.float(), alpha.float(), lp.float())
    torch.testing.assert_close(host.double(), expected, rtol=1e-5, atol=1e-5)
    for splits in (1, 3):  # the CUDA kernel's block program, replayed on the host
        replay = native.emulate_joint_entropy_kernel(weights, alpha, lp, splits)
        torch.testing.assert_close(replay.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c", LARGE)
def test_select_batchbald_at_large_class_counts_picks_the_reference_batch(c):
    lp = _pool(c, n=6, k=4)
    expected = kb.select_batchbald(lp, 3, num_samples=500, generator=3, backend="torch")
    got = kb.select_batchbald(lp, 3, num_samples=500, generator=3, backend="cuda")  # the host twin on CPU
    assert got.indices.tolist() == expected.indices.tolist()
    torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("c", LARGE)
@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_factored_kmeanspp_steps_at_large_class_counts(c, mode):
    """BADGE's step on features H=512 and residuals C: the dense N × H·C embedding is
    never formed (the factored distance), on the Triton step and the host twin."""
    from kbald_kernels.triton import kmeanspp_step

    gen = torch.Generator().manual_seed(c)
    n = 9
    embeddings = reference.FactoredEmbeddings(torch.randn(n, 512, generator=gen).relu(),
                                              torch.randn(n, c, generator=gen) / c**0.5)
    results = []
    for impl in (reference.kmeanspp_steps, kmeanspp_step.kmeanspp_steps, native.kmeanspp_steps):
        min_distances = torch.full((n,), torch.inf)
        selected = torch.zeros(n, dtype=torch.bool)
        indices, scores = impl(embeddings, min_distances, selected, None, 99, 0, 5, mode)
        results.append((indices.tolist(), scores, min_distances))
    (ri, rs, rd), *others = results
    for indices, scores, distances in others:
        assert indices == ri
        torch.testing.assert_close(scores, rs, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(distances, rd, rtol=1e-4, atol=1e-4)
    # The factored distance is the dense one (float64, where cdist is exact enough to compare).
    features, residuals = embeddings.features.double(), embeddings.residuals.double()
    dense = (features[:, :, None] * residuals[:, None, :]).reshape(n, -1)
    factored = reference.min_squared_distances(reference.FactoredEmbeddings(features, residuals),
                                               reference.FactoredEmbeddings(features[ri[:1]], residuals[ri[:1]]))
    torch.testing.assert_close(factored, torch.cdist(dense, dense[ri[:1]]).square()[:, 0], rtol=1e-9, atol=1e-9)
