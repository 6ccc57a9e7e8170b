#pragma once
// 2-D convolution (no bias, no dilation, no groups): ConvEngine, a functional engine over oneDNN
// that quantized and PIM layers call with their own transformed weights, and Conv2d, the FP32 layer.
//
// Layout: src (N, C_in, H, W), weight (C_out, C_in, k, k) (OIHW), dst (N, C_out, OH, OW), with
// OH = (H + 2 padding - k) / stride + 1 (and OW alike), zero padding:
//   dst[n, o, y, x] = sum_{c, i, j} src[n, c, y*stride - padding + i, x*stride - padding + j] * weight[o, c, i, j].
// Oracle: nn/conv_reference.h (tests/nn/conv.cpp compares all three passes on awkward shapes).
//
// Inside, the engine runs oneDNN's kernels in their own blocked layouts (format_tag::any: nChw16c
// activations on AVX-512) and reorders at its edges, so NCHW callers never see them; callers that
// keep activations blocked themselves (Layout::Blocked, BlockedConv) skip those reorders.
// Measured on the ResNet-20 convolutions (batch 128, one AVX-512 core): plain nchw/oihw memory
// makes oneDNN fall back to im2col + GEMM (about 3x slower than the blocked jit kernels even with
// the reorders); with format_tag::any the activation reorders cost about a third of the kernel
// time in the 16-channel stage, which is what the blocked layout removes.
// Results are deterministic for a fixed OpenMP thread count (DESIGN.md 2.6).
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/layer.h"

namespace pimqat::nn {

struct ConvGeometry {
  Index in_channels = 0;
  Index out_channels = 0;
  Index kernel = 1;  // square k x k
  Index stride = 1;
  Index padding = 0;  // zero padding on every side

  Index output_size(Index input_size) const { return (input_size + 2 * padding - kernel) / stride + 1; }
  Index weight_count() const { return out_channels * in_channels * kernel * kernel; }
  Shape weight_shape() const { return {out_channels, in_channels, kernel, kernel}; }
  std::string str() const;  // "3x3 conv 16->32, stride 2, padding 1"
};

// Throws pimqat::Error when a geometry is unusable (non-positive channels, kernel or stride; negative padding).
void validate(const ConvGeometry& g);

// Whether backward_data overwrites diff_src or adds to it (used to fuse a residual sum).
enum class Accumulate { Overwrite, Add };

// Activation layouts the engine accepts for src/dst and their gradients (weights are always OIHW).
// - Nchw: the external layout of every tensor (core/tensor.h).
// - Blocked: "nChw{B}c", oneDNN's native layout, B = channel_block(): element (n, c, h, w) lives at
//   (((n * C/B + c/B) * H + h) * W + w) * B + c % B. Needs C a multiple of B; the Tensor keeps the
//   (N, C, H, W) shape and size. Fused callers (nn/resnet.cpp) keep activations in it between
//   convolutions, which saves the conversions at the engine's edges.
enum class Layout { Nchw, Blocked };

// 16 where oneDNN runs AVX-512 kernels, 8 otherwise (AVX2).
Index channel_block();
// dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols (a float matrix
// transpose; 16 x 16 tiles go through AVX-512 shuffles when compiled for it).
void transpose(const float* src, Index src_stride, Index rows, Index cols, float* dst, Index dst_stride);
// Layout conversions (same shape, C a multiple of channel_block()); dst is resized.
void to_blocked(const Tensor& nchw, Tensor& blocked);
void to_nchw(const Tensor& blocked, Tensor& nchw);

// Caches one set of oneDNN primitives per input shape seen (N, C, H, W), so a changing batch size
// (last batch of an epoch, evaluation batches) costs one primitive creation per new shape.
//
// Cached operands (the reason a layer need not pass everything twice):
// - forward keeps its own copy of `src` in the internal layout; backward_weights reuses it when it
//   is called with the same tensor (same storage and shape) as the latest forward, which must then
//   be unchanged since (the Layer contract). Any other tensor is converted afresh.
// - the internal copy of `diff_dst` made by backward_data is reused by a following
//   backward_weights on the same diff_dst tensor (and vice versa), under the same condition.
// Not thread-safe: one engine is used by one thread at a time (its kernels use OpenMP inside).
class ConvEngine {
 public:
  explicit ConvEngine(ConvGeometry g);
  ~ConvEngine();
  ConvEngine(ConvEngine&&) noexcept;
  ConvEngine& operator=(ConvEngine&&) noexcept;

  const ConvGeometry& geometry() const { return geometry_; }
  // (N, C_out, OH, OW) for a (N, C_in, H, W) src; throws pimqat::Error for a src that does not fit.
  Shape output_shape(const Shape& src) const;

  // Whether Layout::Blocked can be used (C_in and C_out multiples of channel_block()).
  bool supports_blocked() const;

  // dst = conv(src, weight); dst is resized. src and dst are in `layout`.
  void forward(const Tensor& src, const Tensor& weight, Tensor& dst, Layout layout = Layout::Nchw);
  // Sets the engine up for backward_data / backward_weights on operands of a src of this shape, as
  // forward(src, ...) would, without computing the forward (for layers whose forward is not this
  // convolution: PIM layers differentiate the exact product straight-through). oneDNN's backward
  // primitive descriptors need the forward's primitive descriptor as a hint, not its execution.
  // The following backward_weights converts its src to the internal layout itself (forward would
  // have kept that copy); the gradients are the same bits as after forward(). Throws
  // pimqat::Error for a src shape that does not fit.
  void prepare_backward(const Shape& src_shape, Layout layout = Layout::Nchw);
  // diff_src (=|+=) conv^T(diff_dst, weight), shaped as the src of the latest forward call
  // (resized when overwriting; must already have that shape when adding). The layout is the
  // latest forward's.
  void backward_data(const Tensor& diff_dst, const Tensor& weight, Tensor& diff_src,
                     Accumulate accumulate = Accumulate::Overwrite);
  // diff_weight = dL/dweight (overwritten, resized to OIHW); src and diff_dst in the latest forward's layout.
  void backward_weights(const Tensor& src, const Tensor& diff_dst, Tensor& diff_weight);

  // oneDNN's implementation names of the latest shape's primitives ("jit:avx512_core", ...), for logs and benches.
  std::string implementation_info() const;

 private:
  struct Impl;
  ConvGeometry geometry_;
  std::unique_ptr<Impl> impl_;
};

// Optional capability of a convolution layer: running on activations in the blocked layout.
// BasicBlock (nn/resnet.h) keeps activations blocked between its convolutions when all of them
// offer it and supports_blocked() holds, which skips the layout conversions at every engine edge.
// The contract mirrors Layer's: forward_blocked(src, mode) returns an owned dst in the blocked
// layout (src must stay alive and unchanged until backward); backward_blocked(diff_dst) takes
// dL/ddst in the blocked layout, returns dL/dsrc in the blocked layout (empty when the layer skips
// the input gradient) and overwrites the parameter gradients. A quantized convolution offers it by
// quantizing its (layout-agnostic, element-wise) activations as usual and calling its ConvEngine
// with Layout::Blocked.
class BlockedConv {
 public:
  virtual ~BlockedConv() = default;
  virtual bool supports_blocked() const = 0;
  virtual const Tensor& forward_blocked(const Tensor& src, Mode mode) = 0;
  virtual const Tensor& backward_blocked(const Tensor& diff_dst) = 0;
};

// Whether a layer computes dL/dsrc in backward. The first convolution of a network may skip it
// (nothing upstream needs the gradient of the image); its backward() then returns an empty tensor.
enum class InputGradient { Compute, Skip };

// FP32 convolution layer without bias (batch norm follows every convolution in the ResNets).
// Parameter "<name>.weight" of shape (C_out, C_in, k, k), zero until initialized (nn/init.h).
class Conv2d : public Layer, public BlockedConv {
 public:
  Conv2d(std::string name, ConvGeometry g, InputGradient input_gradient = InputGradient::Compute);

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  bool supports_blocked() const override { return engine_.supports_blocked(); }
  const Tensor& forward_blocked(const Tensor& src, Mode mode) override;
  const Tensor& backward_blocked(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override { out.push_back(&weight_); }

  Parameter& weight() { return weight_; }
  const ConvGeometry& geometry() const { return engine_.geometry(); }
  ConvEngine& engine() { return engine_; }
  InputGradient input_gradient() const { return input_gradient_; }

 private:
  const Tensor& backward_any_layout(const Tensor& diff_dst);
  ConvEngine engine_;
  Parameter weight_;
  InputGradient input_gradient_;
  Tensor dst_;
  Tensor diff_src_;
  const Tensor* src_ = nullptr;  // the src of the latest Train-mode forward
  Layout layout_ = Layout::Nchw;  // the latest forward's
};

}  // namespace pimqat::nn
