// Tensor storage: shapes, allocation reuse, alignment, Eigen maps.
#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "core/error.h"

namespace pimqat {
namespace {

bool aligned64(const float* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

TEST(Shape, NumelStrAndEquality) {
  const Shape s{2, 3, 5, 7};
  EXPECT_EQ(s.rank(), 4);
  EXPECT_EQ(s.numel(), 210);
  EXPECT_EQ(s.str(), "(2, 3, 5, 7)");
  EXPECT_EQ(s, (Shape{2, 3, 5, 7}));
  EXPECT_FALSE(s == (Shape{2, 3, 7, 5}));
  EXPECT_FALSE(s == (Shape{2, 3, 35}));
  EXPECT_EQ(Shape{}.numel(), 0);
  EXPECT_EQ((Shape{4, 0}).numel(), 0);
  EXPECT_THROW(Shape({1, 2, 3, 4, 5}), Error);
}

TEST(Tensor, ConstructionFillsAndAligns) {
  for (Index n : {1, 3, 15, 16, 17, 1000, 4097}) {
    Tensor zero(Shape{n});
    ASSERT_TRUE(aligned64(zero.data())) << n;
    for (Index i = 0; i < n; ++i) ASSERT_EQ(zero[i], 0.0f);
    Tensor filled(Shape{n, 1}, 2.5f);
    ASSERT_TRUE(aligned64(filled.data()));
    for (Index i = 0; i < n; ++i) ASSERT_EQ(filled[i], 2.5f);
  }
}

TEST(Tensor, ResizeReusesAllocation) {
  Tensor t(Shape{4, 3, 5, 5}, 1.0f);
  const float* original = t.data();
  t.resize({2, 3, 5, 5});  // smaller: same storage
  EXPECT_EQ(t.data(), original);
  EXPECT_EQ(t.size(), 150);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 5, 5}));
  t.resize({4, 3, 5, 5});  // back within capacity
  EXPECT_EQ(t.data(), original);
  for (Index i = 0; i < 150; ++i) t[i] = static_cast<float>(i);
  t.resize({150});  // same count: contents kept
  EXPECT_EQ(t.data(), original);
  for (Index i = 0; i < 150; ++i) ASSERT_EQ(t[i], static_cast<float>(i));
  t.resize({1000, 10});  // larger: new aligned storage
  EXPECT_EQ(t.size(), 10000);
  EXPECT_TRUE(aligned64(t.data()));
}

TEST(Tensor, CopyIsDeep) {
  Tensor a(Shape{3, 7});
  for (Index i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.5f;
  Tensor b(a);
  Tensor c;
  c = a;
  a[4] = -1.0f;
  EXPECT_EQ(b[4], 2.0f);
  EXPECT_EQ(c[4], 2.0f);
  EXPECT_EQ(b.shape(), a.shape());
  EXPECT_NE(b.data(), a.data());
  EXPECT_TRUE(aligned64(c.data()));
}

TEST(Tensor, At4dIsNchw) {
  Tensor t(Shape{2, 3, 4, 5});
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(i);
  for (Index n = 0; n < 2; ++n)
    for (Index c = 0; c < 3; ++c)
      for (Index h = 0; h < 4; ++h)
        for (Index w = 0; w < 5; ++w) ASSERT_EQ(t.at(n, c, h, w), static_cast<float>(((n * 3 + c) * 4 + h) * 5 + w));
}

TEST(Tensor, MatrixMapIsRowMajorView) {
  Tensor t(Shape{3, 2, 7});
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(i);
  auto m = t.mat(6, 7);
  for (Index r = 0; r < 6; ++r)
    for (Index c = 0; c < 7; ++c) ASSERT_EQ(m(r, c), static_cast<float>(r * 7 + c));
  m(2, 3) = -5.0f;  // a view, not a copy
  EXPECT_EQ(t[2 * 7 + 3], -5.0f);
  const Tensor& ct = t;
  EXPECT_EQ(ct.mat(7, 6)(1, 0), 6.0f);
  EXPECT_THROW(t.mat(5, 7), Error);
  // Math through the map: a product against a naive loop.
  Tensor a(Shape{3, 5}), b(Shape{5, 4}), out(Shape{3, 4});
  for (Index i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) - 3.0f;
  for (Index i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 5) * 0.25f;
  out.mat(3, 4).noalias() = a.mat(3, 5) * b.mat(5, 4);
  for (Index r = 0; r < 3; ++r)
    for (Index c = 0; c < 4; ++c) {
      float s = 0.0f;
      for (Index k = 0; k < 5; ++k) s += a[r * 5 + k] * b[k * 4 + c];
      ASSERT_FLOAT_EQ(out[r * 4 + c], s);
    }
  t.vec().setConstant(3.0f);
  EXPECT_EQ(t[41], 3.0f);
}

}  // namespace
}  // namespace pimqat
