// PowerSGD's small dense operations against naive references.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "codec_harness.h"
#include "linalg.h"

namespace hearth::compress {
namespace {

using namespace testing;  // NOLINT: the codec test helpers

TEST(CodecLinalg, ShapesCoverTheBufferWithLessThanOneRowOfPadding) {
  EXPECT_EQ(chooseShape(0).rows, 0u);
  for (std::size_t n : {1, 2, 3, 10, 1000, 1001, 1 << 20}) {
    for (std::size_t rows : {0, 1, 3, 7}) {
      const MatrixShape s = chooseShape(n, rows);
      ASSERT_GE(s.rows * s.cols, n) << n << " " << rows;
      ASSERT_LT((s.rows - 1) * s.cols, n) << n << " " << rows;
      if (rows > 0 && rows <= n) {
        ASSERT_LE(s.rows, rows);
      }
    }
  }
  EXPECT_EQ(chooseShape(1001).cols, 32u);
  EXPECT_EQ(chooseShape(1001).rows, 32u);
  EXPECT_EQ(chooseShape(1000, 10).cols, 100u);
}

TEST(CodecLinalg, ProductsMatchNaiveWithAPartialLastRow) {
  const std::size_t n = 23, r = 3;
  const MatrixShape s{5, 5};  // last row has 3 of 5 elements
  const auto m = randomVector(n, 1), q = randomVector(s.cols * r, 2),
             p = randomVector(s.rows * r, 3);
  auto at = [&](std::size_t row, std::size_t col) {
    const std::size_t i = row * s.cols + col;
    return i < n ? double(m[i]) : 0.0;
  };
  std::vector<float> mq(s.rows * r), mtp(s.cols * r), pqt(n);
  multiplyMQ(m.data(), n, s, q.data(), r, mq.data());
  multiplyMtP(m.data(), n, s, p.data(), r, mtp.data());
  multiplyPQt(p.data(), q.data(), n, s, r, pqt.data());
  for (std::size_t row = 0; row < s.rows; ++row) {
    for (std::size_t j = 0; j < r; ++j) {
      double sum = 0.0;
      for (std::size_t col = 0; col < s.cols; ++col) sum += at(row, col) * q[col * r + j];
      EXPECT_NEAR(mq[row * r + j], sum, 1e-5);
    }
  }
  for (std::size_t col = 0; col < s.cols; ++col) {
    for (std::size_t j = 0; j < r; ++j) {
      double sum = 0.0;
      for (std::size_t row = 0; row < s.rows; ++row) sum += at(row, col) * p[row * r + j];
      EXPECT_NEAR(mtp[col * r + j], sum, 1e-5);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    double sum = 0.0;
    for (std::size_t j = 0; j < r; ++j)
      sum += double(p[(i / s.cols) * r + j]) * q[(i % s.cols) * r + j];
    EXPECT_NEAR(pqt[i], sum, 1e-5);
  }
}

TEST(CodecLinalg, OrthonormalizeGivesOrthonormalColumnsAndDropsDependentOnes) {
  const std::size_t rows = 50, r = 4;
  auto p = randomVector(rows * r, 9);
  for (std::size_t i = 0; i < rows; ++i)
    p[i * r + 2] = 2 * p[i * r + 0] - p[i * r + 1];             // dependent
  for (std::size_t i = 0; i < rows; ++i) p[i * r + 3] *= 1e6f;  // badly scaled but independent
  orthonormalizeColumns(p.data(), rows, r);
  for (std::size_t a = 0; a < r; ++a) {
    for (std::size_t b = 0; b < r; ++b) {
      double dot = 0.0;
      for (std::size_t i = 0; i < rows; ++i) dot += double(p[i * r + a]) * p[i * r + b];
      const double expected = (a == b && a != 2) ? 1.0 : 0.0;
      EXPECT_NEAR(dot, expected, 1e-6) << a << " " << b;
    }
  }
  std::vector<float> zeros(rows * r, 0.0f);
  orthonormalizeColumns(zeros.data(), rows, r);
  for (float x : zeros) EXPECT_EQ(x, 0.0f);
}

}  // namespace
}  // namespace hearth::compress
