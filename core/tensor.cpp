#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace pimqat {

Shape::Shape(std::initializer_list<Index> dims) : Shape(std::vector<Index>(dims)) {}

Shape::Shape(const std::vector<Index>& dims) {
  if (dims.size() > static_cast<std::size_t>(kMaxRank)) throw Error("tensor rank above 4 is not supported");
  rank_ = static_cast<int>(dims.size());
  for (int i = 0; i < rank_; ++i) {
    PIMQAT_ASSERT(dims[static_cast<std::size_t>(i)] >= 0);
    dims_[i] = dims[static_cast<std::size_t>(i)];
  }
}

Index Shape::numel() const {
  if (rank_ == 0) return 0;
  // Shapes can come from files (IDX headers, checkpoints): a product past 2^63 is an error, not a
  // wrapped (undefined) size.
  Index n = 1;
  for (int i = 0; i < rank_; ++i)
    if (__builtin_mul_overflow(n, dims_[i], &n))
      throw Error("tensor shape " + str() + " has more than 2^63 elements");
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + ")";
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[i] != other.dims_[i]) return false;
  return true;
}

void Tensor::Free::operator()(float* p) const { std::free(p); }

Tensor::Tensor(const Shape& shape) {
  resize(shape);
  zero();
}

Tensor::Tensor(const Shape& shape, float value) {
  resize(shape);
  fill(value);
}

Tensor::Tensor(const Tensor& other) {
  resize(other.shape_);
  if (size_) std::memcpy(data(), other.data(), static_cast<std::size_t>(size_) * sizeof(float));
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) {
    resize(other.shape_);
    if (size_) std::memcpy(data(), other.data(), static_cast<std::size_t>(size_) * sizeof(float));
  }
  return *this;
}

void Tensor::resize(const Shape& shape) {
  const Index n = shape.numel();
  if (n > capacity_) {
    // 64-byte alignment (one cache line, one AVX-512 register); size rounded up as aligned_alloc wants.
    const std::size_t bytes = (static_cast<std::size_t>(n) * sizeof(float) + 63) / 64 * 64;
    auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    data_.reset(p);
    capacity_ = static_cast<Index>(bytes / sizeof(float));
  }
  shape_ = shape;
  size_ = n;
}

void Tensor::fill(float value) { std::fill(data(), data() + size_, value); }

MatrixMap Tensor::mat(Index rows, Index cols) {
  PIMQAT_ASSERT(rows * cols == size_);
  return {data(), rows, cols};
}

ConstMatrixMap Tensor::mat(Index rows, Index cols) const {
  PIMQAT_ASSERT(rows * cols == size_);
  return {data(), rows, cols};
}

}  // namespace pimqat
