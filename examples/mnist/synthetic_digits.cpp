// Rendering of stroke-drawn digits with random distortions.
#include "mnist/synthetic_digits.h"

#include "common/rng.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace mnist {
namespace {

using hearth::examples::Rng;

struct Point {
  double x, y;
};
using Stroke = std::vector<Point>;  // a polyline in the unit box, y pointing down

// Elliptic arc from angle a0 to a1 (degrees; 0 = right, 90 = down).
Stroke arc(double cx, double cy, double rx, double ry, double a0, double a1) {
  constexpr int kPieces = 14;
  constexpr double kPi = 3.14159265358979323846;
  Stroke stroke;
  for (int i = 0; i <= kPieces; ++i) {
    const double a = (a0 + (a1 - a0) * i / kPieces) * kPi / 180.0;
    stroke.push_back({cx + rx * std::cos(a), cy + ry * std::sin(a)});
  }
  return stroke;
}

Stroke join(Stroke a, const Stroke& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Stroke> glyph(int digit) {
  switch (digit) {
    case 0:
      return {arc(0.5, 0.5, 0.42, 0.5, 0, 360)};
    case 1:
      return {{{0.3, 0.22}, {0.55, 0.0}, {0.55, 1.0}}};
    case 2:
      return {join(arc(0.5, 0.28, 0.42, 0.28, 190, 380), {{0.05, 1.0}, {0.98, 1.0}})};
    case 3:
      return {join(arc(0.5, 0.26, 0.4, 0.26, 200, 450), arc(0.5, 0.74, 0.46, 0.26, 270, 520))};
    case 4:
      return {{{0.7, 0.0}, {0.02, 0.66}, {1.0, 0.66}}, {{0.7, 0.0}, {0.7, 1.0}}};
    case 5:
      return {join({{0.95, 0.0}, {0.15, 0.0}, {0.1, 0.45}}, arc(0.5, 0.68, 0.45, 0.32, 215, 500))};
    case 6:
      return {{{0.8, 0.0}, {0.12, 0.62}}, arc(0.5, 0.7, 0.4, 0.3, 0, 360)};
    case 7:
      return {{{0.0, 0.0}, {1.0, 0.0}, {0.35, 1.0}}};
    case 8:
      return {arc(0.5, 0.25, 0.36, 0.25, 0, 360), arc(0.5, 0.74, 0.44, 0.26, 0, 360)};
    default:
      return {arc(0.5, 0.3, 0.42, 0.3, 0, 360), {{0.92, 0.3}, {0.72, 1.0}}};
  }
}

double distanceToSegment(double px, double py, const Point& a, const Point& b) {
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double length2 = dx * dx + dy * dy;
  double t = length2 > 0 ? ((px - a.x) * dx + (py - a.y) * dy) / length2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double ex = a.x + t * dx - px, ey = a.y + t * dy - py;
  return std::sqrt(ex * ex + ey * ey);
}

void render(int digit, Rng& rng, std::uint8_t* out) {
  std::array<float, kImageSide * kImageSide> ink{};
  const double width = rng.uniform(10.0, 17.0);
  const double height = rng.uniform(16.0, 21.0);
  const double centerX = 14.0 + rng.uniform(-3.0, 3.0);
  const double centerY = 14.0 + rng.uniform(-2.5, 2.5);
  const double shear = rng.uniform(-0.3, 0.3);
  const double angle = rng.uniform(-0.25, 0.25);  // radians, about +-15 degrees
  const double cosA = std::cos(angle), sinA = std::sin(angle);
  const double radius = rng.uniform(0.7, 1.8);  // half the stroke width, in pixels
  const double jitter = 0.08;
  std::vector<Stroke> strokes = glyph(digit);
  if (rng.below(4) == 0) {  // a stray pen stroke somewhere
    const Point a{rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)};
    strokes.push_back({a, {a.x + rng.uniform(-0.3, 0.3), a.y + rng.uniform(-0.3, 0.3)}});
  }
  for (const Stroke& stroke : strokes) {
    // Unit box -> pixels: independent jitter per point, shear, rotation, shift.
    std::vector<Point> points;
    for (const Point& p : stroke) {
      const double u = (p.x + rng.uniform(-jitter, jitter) - 0.5) * width;
      const double v = (p.y + rng.uniform(-jitter, jitter) - 0.5) * height;
      const double x = u + shear * v;
      points.push_back({centerX + cosA * x - sinA * v, centerY + sinA * x + cosA * v});
    }
    for (std::size_t i = 0; i + 1 < points.size(); ++i) {
      const Point& a = points[i];
      const Point& b = points[i + 1];
      const int x0 = std::max(0, static_cast<int>(std::floor(std::min(a.x, b.x) - radius - 1)));
      const int x1 =
          std::min(kImageSide - 1, static_cast<int>(std::ceil(std::max(a.x, b.x) + radius + 1)));
      const int y0 = std::max(0, static_cast<int>(std::floor(std::min(a.y, b.y) - radius - 1)));
      const int y1 =
          std::min(kImageSide - 1, static_cast<int>(std::ceil(std::max(a.y, b.y) + radius + 1)));
      for (int y = y0; y <= y1; ++y) {
        for (int x = x0; x <= x1; ++x) {
          const double d = distanceToSegment(x + 0.5, y + 0.5, a, b);
          const float value = static_cast<float>(std::clamp(radius + 0.5 - d, 0.0, 1.0));
          float& cell = ink[static_cast<std::size_t>(y * kImageSide + x)];
          cell = std::max(cell, value);
        }
      }
    }
  }
  if (rng.below(3) == 0) {  // part of the digit is rubbed out
    const double ex = rng.uniform(6.0, 22.0), ey = rng.uniform(6.0, 22.0);
    const double er = rng.uniform(2.0, 4.0);
    for (int y = 0; y < kImageSide; ++y) {
      for (int x = 0; x < kImageSide; ++x) {
        if ((x + 0.5 - ex) * (x + 0.5 - ex) + (y + 0.5 - ey) * (y + 0.5 - ey) < er * er) {
          ink[static_cast<std::size_t>(y * kImageSide + x)] *= 0.1f;
        }
      }
    }
  }
  const double noise = rng.uniform(0.0, 0.4);
  for (std::size_t i = 0; i < ink.size(); ++i) {
    const double value = ink[i] + noise * (rng.uniform() - 0.5) + (rng.below(60) == 0 ? 0.5 : 0.0);
    out[i] = static_cast<std::uint8_t>(std::lround(255.0 * std::clamp(value, 0.0, 1.0)));
  }
}

}  // namespace

DigitImages generateDigits(std::size_t count, std::uint64_t seed) {
  Rng rng(seed);
  DigitImages images;
  images.pixels.resize(count * kImageSide * kImageSide);
  images.labels.resize(count);
  std::array<int, kNumClasses> order{};
  for (std::size_t i = 0; i < count; ++i) {
    if (i % kNumClasses == 0) {  // a fresh random order of the ten classes
      for (int c = 0; c < kNumClasses; ++c) order[c] = c;
      for (int c = kNumClasses - 1; c > 0; --c) std::swap(order[c], order[rng.below(c + 1)]);
    }
    const int digit = order[i % kNumClasses];
    images.labels[i] = static_cast<std::uint8_t>(digit);
    render(digit, rng, images.pixels.data() + i * kImageSide * kImageSide);
  }
  return images;
}

}  // namespace mnist
