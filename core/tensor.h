#pragma once
// Tensor: owning, 64-byte aligned float storage with a shape of rank 1 to 4.
// Layout: row-major over the shape, so a 4-D activation is NCHW (N = batch, C = channels),
// a convolution weight is (C_out, C_in, kH, kW) and a linear weight is (out, in).
// The math goes through Eigen maps (`vec()`, `mat()`), never through copies.
#include <Eigen/Core>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace pimqat {

using Index = std::int64_t;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<Index> dims);
  explicit Shape(const std::vector<Index>& dims);

  int rank() const { return rank_; }
  Index operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  Index& operator[](int axis) { return dims_[static_cast<std::size_t>(axis)]; }
  Index numel() const;
  std::vector<Index> dims() const { return {dims_, dims_ + rank_}; }
  std::string str() const;  // "(128, 16, 28, 28)"
  bool operator==(const Shape& other) const;

 private:
  static constexpr int kMaxRank = 4;
  Index dims_[kMaxRank] = {0, 0, 0, 0};
  int rank_ = 0;
};

using VectorMap = Eigen::Map<Eigen::VectorXf, Eigen::Aligned64>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf, Eigen::Aligned64>;
using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<MatrixRM, Eigen::Aligned64>;
using ConstMatrixMap = Eigen::Map<const MatrixRM, Eigen::Aligned64>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(const Shape& shape);  // zero-filled
  Tensor(const Shape& shape, float value);
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  // Changes the shape; keeps the allocation when it is large enough. Contents are unspecified
  // afterwards unless the element count is unchanged (then they are kept).
  void resize(const Shape& shape);

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  Index dim(int axis) const { return shape_[axis]; }
  Index size() const { return size_; }
  bool empty() const { return size_ == 0; }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  float& operator[](Index i) { return data_.get()[i]; }
  float operator[](Index i) const { return data_.get()[i]; }
  // Element of a 4-D tensor (n, c, h, w).
  float& at(Index n, Index c, Index h, Index w) {
    return data_.get()[((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w];
  }
  float at(Index n, Index c, Index h, Index w) const {
    return data_.get()[((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w];
  }

  void fill(float value);
  void zero() { fill(0.0f); }

  VectorMap vec() { return {data(), size_}; }
  ConstVectorMap vec() const { return {data(), size_}; }
  // The storage viewed as a row-major (rows x cols) matrix; rows * cols must equal size().
  MatrixMap mat(Index rows, Index cols);
  ConstMatrixMap mat(Index rows, Index cols) const;

 private:
  struct Free {
    void operator()(float* p) const;
  };
  Shape shape_;
  Index size_ = 0;
  Index capacity_ = 0;
  std::unique_ptr<float[], Free> data_;
};

}  // namespace pimqat
