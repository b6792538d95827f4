// The elementwise formulas as source text, for the kernels generated at run time (NVRTC's:
// cuda/fused.cpp; the native tier's: cpu/native.cpp), so that they compute what the compiled
// kernels do from the same text.
#pragma once
#include <string>

#include "theta/dtype.hpp"

namespace th::detail {

/// core/scalar_math.hpp's text, then in namespace th::detail one function per op of
/// core/elementwise_list.hpp: `u_<name>(x)` and `b_<name>(a, b)`, templates on the element
/// type, host and device.
const std::string& formula_source();
/// The C++ type generated code uses for a float dtype: "float" or "double".
inline const char* c_type_name(DType dtype) { return dtype == DType::float32 ? "float" : "double"; }
/// cpu/pairwise.hpp's text (theta's order of whole sums).
const char* pairwise_source();
/// cpu/gemv_reference.hpp's text (the small matrix-vector products, one value at a time).
const char* gemv_reference_source();

}  // namespace th::detail
