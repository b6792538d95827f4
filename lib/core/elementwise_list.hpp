// The elementwise primitives, one line each: name, dtype rule, scalar formula, and the
// vector-Jacobian product written with public ops. The CPU kernel table (cpu/elementwise.cpp)
// and the op table (ops/elementwise.cpp) are both generated from these lists; adding an
// elementwise op is one line here plus one test line.
//   unary:  x (input), y (output), g (incoming gradient); "none" means no gradient.
//   binary: a, b (inputs), y, g; one VJP per input.
//   dtype rules: keep (bool -> int64), to_float (ints -> floatX), arith (numpy promotion,
//   bool -> int64), divide (promotion, ints -> floatX), compare (boolean result).
#pragma once

// clang-format off
#define THETA_UNARY_OPS(X)                                                              \
  X(neg,      keep,     -x,                      -g)                    /* y = -x */     \
  X(abs,      keep,     (x < 0 ? -x : x),        g * sign(x))           /* y = |x| */    \
  X(sign,     keep,     T((x > 0) - (x < 0)),    none)                  /* y = sgn x */  \
  X(exp,      to_float, std::exp(x),             g * y)                 /* y = e^x */    \
  X(log,      to_float, std::log(x),             g / x)                 /* y = ln x */   \
  X(log1p,    to_float, std::log1p(x),           g / (x + 1.0))         /* ln(1+x) */    \
  X(expm1,    to_float, std::expm1(x),           g * (y + 1.0))         /* e^x - 1 */    \
  /* erf'(x) = 2 / sqrt(pi) e^(-x^2) */                                                  \
  X(erf,      to_float, erf_scalar(x),           g * exp(-(x * x)) * 1.1283791670955126)  \
  X(sqrt,     to_float, std::sqrt(x),            g / (y * 2.0))                          \
  X(sin,      to_float, std::sin(x),             g * cos(x))                             \
  X(cos,      to_float, std::cos(x),             -(g * sin(x)))                          \
  X(tanh,     to_float, tanh_scalar(x),          g * (1.0 - y * y))                      \
  /* NOTE: sigmoid and softplus are primitives, not compositions: composed from exp,  */ \
  /* their gradients overflow to inf/inf = NaN for |x| > ~710 (float64).               */ \
  X(sigmoid,  to_float, sigmoid_scalar(x),       g * y * (1.0 - y))                      \
  X(softplus, to_float, softplus_scalar(x),      g * sigmoid(x))                        \
  /* relu: a primitive so that it fuses (as where(x > 0, x, 0) it took two passes); */  \
  /* y'(x) = sign(y): 1 where x > 0, else 0 (y'(0) = 0, as Theano's)                 */  \
  X(relu,     keep,     relu_scalar(x),          g * sign(y))                            \
  /* the inverse trigonometric functions (ONNX's Asin, Acos, Atan; Theano's names) */     \
  X(arcsin,   to_float, std::asin(x),            g / sqrt(1.0 - x * x))                  \
  X(arccos,   to_float, std::acos(x),            -(g / sqrt(1.0 - x * x)))               \
  X(arctan,   to_float, std::atan(x),            g / (x * x + 1.0))

#define THETA_BINARY_OPS(X)                                                                    \
  X(add,     arith,   wrap_add(a, b),   g,                              g)                      \
  X(sub,     arith,   wrap_sub(a, b),   g,                              -g)                     \
  X(mul,     arith,   wrap_mul(a, b),   g * b,                          g * a)                  \
  X(div,     divide,  a / b,            g / b,                          -(g * y / b))           \
  /* d/db a^b = a^b ln a, taken as 0 where a <= 0 (real powers of negatives need integral b) */ \
  X(pow,     arith,   pow_scalar(a, b), g * b * pow(a, b - 1.0),        (g * y * log(where(a > 0.0, a, 1.0)))) \
  /* ties send the gradient to a */                                                             \
  X(maximum, arith,   max_scalar(a, b), (where(a >= b, g, 0.0)),        (where(a >= b, 0.0, g))) \
  X(minimum, arith,   min_scalar(a, b), (where(a <= b, g, 0.0)),        (where(a <= b, 0.0, g))) \
  X(lt,      compare, a < b,            none,                           none)                   \
  X(le,      compare, a <= b,           none,                           none)                   \
  X(gt,      compare, a > b,            none,                           none)                   \
  X(ge,      compare, a >= b,           none,                           none)                   \
  X(eq,      compare, a == b,           none,                           none)                   \
  X(ne,      compare, a != b,           none,                           none)
// clang-format on
