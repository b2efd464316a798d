"""The compiled modules: the host C++ build against the reference, and the CUDA
module importing (and refusing clearly) on a machine without a GPU."""

import pytest
import torch

from kbald_kernels import native, reference

from conftest import random_log_probs


def test_host_module_is_built():
    module = native.host_module()
    assert not isinstance(module, str), module
    assert module.openmp_threads() >= 1


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 3), (1000, 10), (33, 17)])
def test_host_row_entropy_matches_the_reference(dtype, tol, rows, cols):
    probs = random_log_probs(rows, 1, cols, zeros=True, device="cpu")[:, 0].exp()
    got = native.row_entropy(probs.to(dtype))
    assert got.dtype == dtype
    expected = reference.entropy(probs.log()[:, None, :])
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)


def test_row_entropy_rejects_bad_input():
    with pytest.raises(TypeError, match="float32 or float64"):
        native.row_entropy(torch.ones(2, 2, dtype=torch.float16))
    with pytest.raises(ValueError, match="2-D"):
        native.row_entropy(torch.ones(2))


def test_cuda_module_imports_and_reports_its_architectures():
    module = native.cuda_module()
    if isinstance(module, str):
        pytest.skip(module)
    assert "90" in module.architectures.split(";")
    assert module.runtime_version() >= 12000
    assert module.driver_version() >= (12000 if torch.cuda.is_available() else 0)  # 0: no driver


def test_cuda_module_without_a_gpu_raises_instead_of_crashing():
    module = native.cuda_module()
    if isinstance(module, str):
        pytest.skip(module)
    if torch.cuda.is_available():
        probs = random_log_probs(300, 1, 10, device="cuda")[:, 0].exp().float()
        torch.testing.assert_close(native.row_entropy(probs).cpu(), native.row_entropy(probs.cpu()))
        return
    with pytest.raises(RuntimeError, match="kbald_kernels CUDA: .*cudaGetDeviceCount|no CUDA device"):
        module.device_count()
    x = torch.ones(4, 2)
    with pytest.raises(RuntimeError, match="kbald_kernels CUDA"):
        module.row_entropy(x.data_ptr(), x.data_ptr(), 4, 2, "float32", 0)
