#include "nn/init.h"

#include <cmath>

#include "core/error.h"

namespace pimqat::nn {

void fill_uniform(Tensor& t, double low, double high, RandomStream& stream) {
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(low + (high - low) * stream.uniform_double());
}

void fill_normal(Tensor& t, double mean, double stddev, RandomStream& stream) {
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(mean + stddev * static_cast<double>(stream.normal()));
}

Index fan_in(const Shape& s) {
  if (s.rank() == 2) return s[1];
  if (s.rank() == 4) return s[1] * s[2] * s[3];
  throw Error("fan_in: weight shape " + s.str() + " is neither (out, in) nor (out, in, kh, kw)");
}

Index fan_out(const Shape& s) {
  if (s.rank() == 2) return s[0];
  if (s.rank() == 4) return s[0] * s[2] * s[3];
  throw Error("fan_out: weight shape " + s.str() + " is neither (out, in) nor (out, in, kh, kw)");
}

void kaiming_normal_fan_out(Tensor& weight, RandomStream& stream) {
  const double stddev = std::sqrt(2.0 / static_cast<double>(fan_out(weight.shape())));
  fill_normal(weight, 0.0, stddev, stream);
}

void linear_default_init(Tensor& weight, Tensor* bias, RandomStream& stream) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight.shape())));
  fill_uniform(weight, -bound, bound, stream);
  if (bias) fill_uniform(*bias, -bound, bound, stream);
}

std::uint64_t stable_hash(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

RandomStream layer_init_stream(const RngKey& key, const std::string& layer_name) {
  return RandomStream(key.with(Purpose::WeightInit, stable_hash(layer_name)));
}

}  // namespace pimqat::nn
