// linalg.h (internal) — the few small dense operations PowerSGD needs, on a
// flat buffer of n floats viewed as a row-major rows x cols matrix M whose
// last row may be partial (the missing tail counts as zeros). Factors are
// row-major: P is rows x r, Q is cols x r. Deterministic (same inputs, same
// bits on every rank); pure functions, thread-safe.
#pragma once

#include <cstddef>

namespace hearth::compress {

struct MatrixShape {
  std::size_t rows = 0;
  std::size_t cols = 0;
};

// The shape for n elements: cols = ceil(sqrt(n)), rows = ceil(n / cols); or,
// with rows > 0 given, cols = ceil(n / rows). n == 0 gives 0 x 0.
MatrixShape chooseShape(std::size_t n, std::size_t rows = 0);

// p = M q. REQUIRES: rows * cols >= n > (rows - 1) * cols (or n == 0).
void multiplyMQ(const float* m, std::size_t n, MatrixShape shape, const float* q, std::size_t r,
                float* p);
// q = M^T p.
void multiplyMtP(const float* m, std::size_t n, MatrixShape shape, const float* p, std::size_t r,
                 float* q);
// out[i] = (P Q^T)[i] for the first n elements.
void multiplyPQt(const float* p, const float* q, std::size_t n, MatrixShape shape, std::size_t r,
                 float* out);

// Orthonormalizes the r columns of the rows x r matrix p in place (modified
// Gram-Schmidt, applied twice, in double). A column that is zero, or
// numerically inside the span of the earlier ones, becomes zero.
void orthonormalizeColumns(float* p, std::size_t rows, std::size_t r);

}  // namespace hearth::compress
