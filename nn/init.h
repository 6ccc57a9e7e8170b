#pragma once
// Weight initialization, deterministic from a RandomStream (DESIGN.md 2.6).
#include <string>

#include "core/rng.h"
#include "core/tensor.h"

namespace pimqat::nn {

// Every element ~ U(low, high): low + (high - low) * u with u = stream.uniform_double() in [0, 1).
void fill_uniform(Tensor& t, double low, double high, RandomStream& stream);
// Every element ~ N(mean, stddev) (stream.normal()).
void fill_normal(Tensor& t, double mean, double stddev, RandomStream& stream);

// fan_in / fan_out of a weight: (out, in) -> in / out; (out, in, kh, kw) -> in*kh*kw / out*kh*kw.
Index fan_in(const Shape& weight_shape);
Index fan_out(const Shape& weight_shape);

// Kaiming-normal in fan_out mode with the ReLU gain (PyTorch's
// kaiming_normal_(w, mode="fan_out", nonlinearity="relu")): w ~ N(0, 2 / fan_out).
void kaiming_normal_fan_out(Tensor& weight, RandomStream& stream);

// PyTorch's default nn.Linear initialization: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in))
// (kaiming_uniform with a = sqrt(5) gives exactly this bound). Weight first, then bias, from one stream.
void linear_default_init(Tensor& weight, Tensor* bias, RandomStream& stream);

// The init stream of one named layer: keyed by (key.seed, key.task, WeightInit, hash(name)), so a
// layer's initial weights depend only on the key and its name, not on what was built before it.
RandomStream layer_init_stream(const RngKey& key, const std::string& layer_name);

// 64-bit FNV-1a of a string (stable across platforms and runs).
std::uint64_t stable_hash(const std::string& text);

}  // namespace pimqat::nn
