"""Build of kbald_kernels' compiled modules.

* ``kbald_kernels._host``: host C++ (g++, OpenMP where the compiler has it). Always built.
* ``kbald_kernels._cuda``: CUDA kernels compiled by nvcc, bound by a host-compiled
  pybind11 file, with the CUDA runtime linked statically so the module imports on a
  machine without a GPU or driver. Built when nvcc is found.

Environment:
  KBALD_FORCE_CUDA=1   build the CUDA module or fail the install (nvcc missing, compile error)
  KBALD_SKIP_CUDA=1    never build the CUDA module
  KBALD_CUDA_ARCHS     semicolon list of SM versions, default "80;86;89;90"; the newest
                       also gets PTX so newer GPUs JIT it
  CUDA_HOME            CUDA toolkit root, when nvcc is not on PATH

Whether this machine has a GPU plays no part: build machines often have none.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
INCLUDE = ROOT / "csrc" / "include"
# Edits to the shared headers rebuild the modules that include them.
HEADERS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "csrc").rglob("*.h"))
DEFAULT_ARCHS = "80;86;89;90"


def env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def find_cuda_home():
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.append("/usr/local/cuda")
    for home in candidates:
        if home and (Path(home) / "include" / "cuda_runtime.h").is_file():
            return Path(home)
    return None


def find_nvcc(cuda_home):
    if cuda_home is not None and (cuda_home / "bin" / "nvcc").is_file():
        return str(cuda_home / "bin" / "nvcc")
    return shutil.which("nvcc")


def cudart_static_dir(cuda_home):
    for sub in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
        if (cuda_home / sub / "libcudart_static.a").is_file():
            return cuda_home / sub
    return None


def gencode_flags(archs):
    arch_list = [a.strip().replace(".", "") for a in archs.split(";") if a.strip()]
    if not arch_list:
        raise RuntimeError("KBALD_CUDA_ARCHS is empty")
    flags = []
    for arch in arch_list:
        flags += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    newest = max(arch_list, key=int)
    flags += ["-gencode", f"arch=compute_{newest},code=compute_{newest}"]
    return arch_list, flags


def compiler_has_openmp(compiler):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp_check.cpp"
        src.write_text("#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            objects = compiler.compile([str(src)], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objects, "omp_check", output_dir=tmp, extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Compiles *.cu sources with nvcc, everything else with the host compiler."""

    def build_extension(self, ext):
        if ext.name.endswith("._host") and compiler_has_openmp(self.compiler):
            ext.extra_compile_args.append("-fopenmp")
            ext.extra_link_args.append("-fopenmp")
        cu_sources = [s for s in ext.sources if s.endswith(".cu")]
        if cu_sources:
            ext.sources = [s for s in ext.sources if not s.endswith(".cu")]
            ext.extra_objects = list(ext.extra_objects or []) + self.compile_cuda(ext, cu_sources)
        super().build_extension(ext)

    def compile_cuda(self, ext, sources):
        nvcc = ext.nvcc
        out_dir = Path(self.build_temp) / "cuda"
        out_dir.mkdir(parents=True, exist_ok=True)
        objects = []
        for src in sources:
            obj = out_dir / (Path(src).stem + ".o")
            cmd = [nvcc, "-c", src, "-o", str(obj), "-O3", "-std=c++17", "-Xcompiler", "-fPIC",
                   "--expt-relaxed-constexpr", f"-I{INCLUDE}", *ext.gencode]
            print("nvcc:", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            objects.append(str(obj))
        return objects


def cuda_extension():
    force, skip = env_flag("KBALD_FORCE_CUDA"), env_flag("KBALD_SKIP_CUDA")
    if force and skip:
        raise RuntimeError("KBALD_FORCE_CUDA and KBALD_SKIP_CUDA are both set")
    if skip:
        print("kbald_kernels: KBALD_SKIP_CUDA set, not building the CUDA module", flush=True)
        return None
    cuda_home = find_cuda_home()
    nvcc = find_nvcc(cuda_home)
    libdir = cudart_static_dir(cuda_home) if cuda_home else None
    if nvcc is None or libdir is None:
        why = "nvcc not found" if nvcc is None else f"libcudart_static.a not found under {cuda_home}"
        if force:
            raise RuntimeError(f"KBALD_FORCE_CUDA=1 but {why}; set CUDA_HOME")
        print(f"kbald_kernels: {why}, building without the CUDA module", flush=True)
        return None
    arch_list, gencode = gencode_flags(os.environ.get("KBALD_CUDA_ARCHS", DEFAULT_ARCHS))
    print(f"kbald_kernels: building the CUDA module with {nvcc} for sm_{', sm_'.join(arch_list)}", flush=True)
    ext = Pybind11Extension(
        "kbald_kernels._cuda",
        ["csrc/cuda/module.cpp", "csrc/cuda/row_entropy.cu", "csrc/cuda/joint_entropy.cu"],
        include_dirs=[str(INCLUDE), "csrc/cuda"],
        depends=HEADERS,
        define_macros=[("KBALD_CUDA_ARCHS", '"' + ";".join(arch_list) + '"')],
        library_dirs=[str(libdir)],
        libraries=["cudart_static", "dl", "rt", "pthread"],
        cxx_std=17,
    )
    ext.nvcc = nvcc
    ext.gencode = gencode
    return ext


host = Pybind11Extension(
    "kbald_kernels._host",
    ["csrc/host/module.cpp", "csrc/host/host_math.cpp", "csrc/host/information_terms_cpu.cpp",
     "csrc/host/kbald_step_cpu.cpp", "csrc/host/pairwise_mutual_information_cpu.cpp", "csrc/host/epig_cpu.cpp",
     "csrc/host/joint_entropy_cpu.cpp", "csrc/host/kmeanspp_cpu.cpp"],
    include_dirs=[str(INCLUDE), "csrc/host"],
    depends=HEADERS,
    # No FP-exception semantics are relied on; without this GCC will not if-convert
    # (and so not vectorise) the selects in the joint-entropy loop. -Wno-psabi: every
    # function that takes or returns 16-lane vectors is always_inline, so none is called
    # across the per-instruction-set clones, whose registers for them differ.
    extra_compile_args=["-O3", "-fno-trapping-math", "-Wno-psabi"],
    cxx_std=17,
)

extensions = [host]
cuda = cuda_extension()
if cuda is not None:
    extensions.append(cuda)

if sys.platform == "darwin":
    os.environ.setdefault("MACOSX_DEPLOYMENT_TARGET", "11.0")

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
