// The hot loops are compiled for AVX-512 and AVX2 as well and chosen at load time:
// the install must run on any x86-64. OpenMP's outlined loop bodies do not inherit
// the attribute, so each parallel loop calls a cloned function for its work.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KBALD_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KBALD_CPU_CLONES
#endif
