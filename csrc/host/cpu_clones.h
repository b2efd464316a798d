// The hot loops are compiled for AVX-512 and AVX2 as well and chosen at run time:
// the install must run on any x86-64. Scalar loops that GCC vectorises itself are
// cloned (KBALD_CPU_CLONES, chosen at load time). OpenMP's outlined loop bodies do
// not inherit the attribute, so each parallel loop calls a cloned function or an
// entry point for its work.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KBALD_X86_GCC 1
#define KBALD_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KBALD_X86_GCC 0
#define KBALD_CPU_CLONES
#endif

#include <string>

namespace kbald::host {

// Loops written on vector types need code of their own per instruction set (their
// vector width, kVectorWidth in host_math.h, and intrinsics a clone's shared body
// cannot hold), so they are compiled once per HostIsa instead: an entry point per
// level with that level's target, `flatten` so every helper and template it calls is
// inlined and compiled for the same target.
enum class HostIsa { kX86_64_V4, kX86_64_V3, kBaseline };

// The level those entry points (the host vector loops) run at: the best this
// processor has, or a lower one asked for by the environment's KBALD_HOST_ISA at
// load or by cap_host_isa (which returns the level it set), so tests and benchmarks
// run every level's code on one machine. Names: "x86-64-v4", "x86-64-v3", "baseline".
HostIsa host_isa();
HostIsa cap_host_isa(HostIsa asked);
HostIsa host_isa_named(const std::string& name);
const char* host_isa_name(HostIsa isa);

}  // namespace kbald::host

#if KBALD_X86_GCC
#define KBALD_FOR_X86_64_V4 [[gnu::flatten, gnu::target("arch=x86-64-v4")]]
#define KBALD_FOR_X86_64_V3 [[gnu::flatten, gnu::target("arch=x86-64-v3")]]
#else
#define KBALD_FOR_X86_64_V4 [[gnu::flatten]]
#define KBALD_FOR_X86_64_V3 [[gnu::flatten]]
#endif
#define KBALD_FOR_BASELINE [[gnu::flatten]]
