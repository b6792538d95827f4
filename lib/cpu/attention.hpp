// Scaled dot-product attention on the CPU in blocks (the flash-attention scheme): the
// (Lq x Lk) score matrix of a head is never held whole. Forward: per block of queries, the
// key blocks one after another with a running row maximum and sum of exponentials; it saves
// each row's log-sum-exp for the backward pass, which recomputes the scores block by block.
// Blocks wholly above the diagonal of a causal mask are skipped.
#pragma once
#include <cstdint>
#include <vector>

namespace th::detail::cpu {

/// B heads (the batch dims flattened) of q (Lq x d), k (Lk x d), v (Lk x dv), contiguous.
struct AttentionGeom {
  std::int64_t B = 1, Lq = 0, Lk = 0, d = 0, dv = 0;
  double scale = 1;
  bool causal = false;  // key j > query i masked (top-left aligned)
};

/// A user mask broadcast over (B, Lq, Lk): element (b, i, j) at data + batch[b] + i * row + j * col
/// (strides 0 where broadcast). Boolean: true attends; else additive, in the kernel's type.
struct AttentionMask {
  const void* data = nullptr;
  bool boolean = false;
  std::vector<std::int64_t> batch;
  std::int64_t row = 0, col = 0;
};

/// out (B, Lq, dv) and lse (B, Lq): each row's log-sum-exp of its scaled, masked scores.
template <class T>
void attention_forward(const AttentionGeom& g, const T* q, const T* k, const T* v, const AttentionMask& mask, T* out,
                       T* lse);
/// The gradients dq, dk, dv of out's gradient dout (out and lse from the forward).
template <class T>
void attention_backward(const AttentionGeom& g, const T* q, const T* k, const T* v, const AttentionMask& mask,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

}  // namespace th::detail::cpu
