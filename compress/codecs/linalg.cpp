#include "linalg.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace hearth::compress {

MatrixShape chooseShape(std::size_t n, std::size_t rows) {
  if (n == 0) return {};
  MatrixShape shape;
  if (rows > 0) {
    shape.rows = std::min(rows, n);
    shape.cols = (n + shape.rows - 1) / shape.rows;
  } else {
    shape.cols = static_cast<std::size_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    shape.rows = (n + shape.cols - 1) / shape.cols;
  }
  // Drop empty trailing rows (possible when rows was given).
  shape.rows = (n + shape.cols - 1) / shape.cols;
  return shape;
}

namespace {

// Length of row `row` (the last may be partial).
std::size_t rowLength(std::size_t n, MatrixShape shape, std::size_t row) {
  return std::min(shape.cols, n - row * shape.cols);
}

}  // namespace

void multiplyMQ(const float* m, std::size_t n, MatrixShape shape, const float* q, std::size_t r,
                float* p) {
  std::vector<float> acc(r);
  for (std::size_t row = 0; row < shape.rows; ++row) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    const float* mrow = m + row * shape.cols;
    const std::size_t len = rowLength(n, shape, row);
    for (std::size_t col = 0; col < len; ++col) {
      const float x = mrow[col];
      const float* qrow = q + col * r;
      for (std::size_t j = 0; j < r; ++j) acc[j] += x * qrow[j];
    }
    std::copy(acc.begin(), acc.end(), p + row * r);
  }
}

void multiplyMtP(const float* m, std::size_t n, MatrixShape shape, const float* p, std::size_t r,
                 float* q) {
  std::fill(q, q + shape.cols * r, 0.0f);
  for (std::size_t row = 0; row < shape.rows; ++row) {
    const float* mrow = m + row * shape.cols;
    const float* prow = p + row * r;
    const std::size_t len = rowLength(n, shape, row);
    for (std::size_t col = 0; col < len; ++col) {
      const float x = mrow[col];
      float* qrow = q + col * r;
      for (std::size_t j = 0; j < r; ++j) qrow[j] += x * prow[j];
    }
  }
}

void multiplyPQt(const float* p, const float* q, std::size_t n, MatrixShape shape, std::size_t r,
                 float* out) {
  for (std::size_t row = 0; row < shape.rows; ++row) {
    const float* prow = p + row * r;
    float* orow = out + row * shape.cols;
    const std::size_t len = rowLength(n, shape, row);
    for (std::size_t col = 0; col < len; ++col) {
      const float* qrow = q + col * r;
      float sum = 0.0f;
      for (std::size_t j = 0; j < r; ++j) sum += prow[j] * qrow[j];
      orow[col] = sum;
    }
  }
}

void orthonormalizeColumns(float* p, std::size_t rows, std::size_t r) {
  std::vector<double> a(rows * r);
  std::copy(p, p + rows * r, a.begin());
  auto column = [&](std::size_t j, std::size_t i) -> double& { return a[i * r + j]; };
  auto norm = [&](std::size_t j) {
    double s = 0.0;
    for (std::size_t i = 0; i < rows; ++i) s += column(j, i) * column(j, i);
    return std::sqrt(s);
  };
  for (std::size_t j = 0; j < r; ++j) {
    const double before = norm(j);
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t k = 0; k < j; ++k) {
        double dot = 0.0;
        for (std::size_t i = 0; i < rows; ++i) dot += column(k, i) * column(j, i);
        for (std::size_t i = 0; i < rows; ++i) column(j, i) -= dot * column(k, i);
      }
    }
    const double after = norm(j);
    // What is left of a dependent column is rounding noise: drop it.
    const bool independent = after > 0.0 && after > 1e-6 * before;
    for (std::size_t i = 0; i < rows; ++i) column(j, i) = independent ? column(j, i) / after : 0.0;
  }
  for (std::size_t i = 0; i < rows * r; ++i) p[i] = static_cast<float>(a[i]);
}

}  // namespace hearth::compress
