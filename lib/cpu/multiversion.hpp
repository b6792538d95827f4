// Kernels built several times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the
// baseline x86-64, and picked at load time by the CPU (GCC/Clang function multi-versioning):
// the default build stays portable (no -march=native) and still uses wide vectors and FMA
// where the CPU has them. The files holding such kernels (cpu/elementwise.cpp, the eager
// loops, and cpu/fused.cpp, the fused blocks) are the only ones compiled with
// -ffp-contract=fast, and both apply the same formulas (core/elementwise_list.hpp) to one
// element at a time: an op gives the same bits eager or fused on a given CPU, while results
// may differ in the last place between CPUs (an FMA rounds a*b+c once).
// Sanitizer builds keep one version (their runtimes start after ifunc resolvers run).
#pragma once

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define THETA_ONE_VERSION
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define THETA_ONE_VERSION
#endif
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(THETA_ONE_VERSION)
#define THETA_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define THETA_MULTIVERSION
#endif
