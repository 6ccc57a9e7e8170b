#pragma once
// CIFAR-style ResNet-(6n+2) (He et al. 2016, section 4.2) with 1x1-conv + BN downsampling
// shortcuts ("option B"): depth 20/32/44/56 -> n = 3/5/7/9 basic blocks per stage.
//
//   conv1: 3x3 conv in_channels -> 16, bn1 (+ ReLU)
//   layer1.{0..n-1}: 16 channels; layer2.*: 32 channels, first block stride 2;
//   layer3.*: 64 channels, first block stride 2
//   avgpool: global average pool -> (N, 64); fc: linear 64 -> classes
//
// Any input channel count and spatial size works (1x28x28 -> 28, 14, 7; 3x32x32 -> 32, 16, 8).
// Names follow PyTorch's CIFAR ResNets so checkpoints read familiarly: "conv1", "bn1",
// "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2", "layer2.0.shortcut.conv",
// "layer2.0.shortcut.bn", "fc"; parameters "<layer>.weight" / "<layer>.bias".
//
// Convolutions and the linear layer come from a LayerFactory so that quantized and PIM layers
// plug in; batch norms, ReLUs and the residual sums are always this file's FP32 code.
#include <cstdint>
#include <memory>
#include <string>

#include "core/rng.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/sequential.h"

namespace pimqat::nn {

// Where a convolution sits: the network's first conv (its input is the image: DESIGN.md 2.1 keeps
// it digital, and its backward need not compute dL/dimage), a body conv of a basic block, or a
// 1x1 downsampling shortcut conv.
enum class ConvRole { First, Body, Shortcut };

struct ConvSpec {
  std::string name;  // layer name, e.g. "layer2.0.conv1"
  ConvGeometry geometry;
  ConvRole role = ConvRole::Body;
};

struct LinearSpec {
  std::string name;  // "fc"
  Index in = 0;
  Index out = 0;
};

// Makes the convolutions and the final linear layer of a network. The default makes FP32 Conv2d
// (Kaiming-normal, fan_out, ReLU gain; a First conv skips the input gradient) and Linear
// (PyTorch's default uniform init). `init` is the layer's own weight-init stream.
struct LayerFactory {
  virtual ~LayerFactory() = default;
  virtual LayerPtr make_conv(const ConvSpec& spec, RandomStream& init);
  virtual LayerPtr make_linear(const LinearSpec& spec, RandomStream& init);
};

// Residual basic block: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), with
// shortcut(x) = x, or bn(conv1x1(x)) when `shortcut_conv` is given. bn1's ReLU, and bn2 + shortcut
// BN + sum + ReLU are fused into single passes; backward fuses the matching reductions.
// Fast path: when every conv offers BlockedConv (nn/conv.h) with supports_blocked(), the block
// converts its input once and keeps every intermediate activation and gradient in the blocked
// layout (no per-conv layout conversions); its output and dL/dsrc are NCHW as always. Otherwise
// each conv runs through its Layer interface on NCHW tensors. Both paths compute the same function.
class BasicBlock : public Layer {
 public:
  // conv1: 3x3 (stride s) in -> out channels; conv2: 3x3 out -> out; shortcut_conv: 1x1 (stride s)
  // in -> out, or null for the identity (then in == out and s == 1 are required at forward).
  BasicBlock(std::string name, Index out_channels, LayerPtr conv1, LayerPtr conv2, LayerPtr shortcut_conv);

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override;
  void collect_state(std::vector<StateTensor>& out) override;
  void visit(const std::function<void(Layer&)>& f) override;

  Layer& conv1() { return *conv1_; }
  BatchNorm2d& bn1() { return bn1_; }
  Layer& conv2() { return *conv2_; }
  BatchNorm2d& bn2() { return bn2_; }
  bool has_shortcut() const { return shortcut_conv_ != nullptr; }
  bool uses_blocked_layout() const { return fast_; }
  Layer* shortcut_conv() { return shortcut_conv_.get(); }
  BatchNorm2d* shortcut_bn() { return shortcut_bn_.get(); }

 private:
  LayerPtr conv1_;
  BatchNorm2d bn1_;
  LayerPtr conv2_;
  BatchNorm2d bn2_;
  LayerPtr shortcut_conv_;
  std::unique_ptr<BatchNorm2d> shortcut_bn_;

  const Tensor& forward_fast(const Tensor& src, Mode mode);
  const Tensor& backward_fast(const Tensor& diff_dst);
  // The convs' blocked-layout interfaces, or nulls.
  BlockedConv* fast_conv1_ = nullptr;
  BlockedConv* fast_conv2_ = nullptr;
  BlockedConv* fast_shortcut_ = nullptr;
  bool fast_ = false;  // fast path usable (decided at construction)
  // Fast path activations (blocked layout) kept from forward for backward: the block's input and
  // bn1's output are the block's; y1, y2 and the shortcut conv's output belong to the convs.
  Tensor x_blocked_, h1_blocked_;
  std::vector<std::uint16_t> relu_mask_;  // output ReLU mask, one bit per element (blocked order)
  const Tensor* y1_blocked_ = nullptr;
  const Tensor* y2_blocked_ = nullptr;
  const Tensor* shortcut_blocked_ = nullptr;

  const Tensor* src_ = nullptr;        // block input (Train forward)
  const Tensor* y2_ = nullptr;         // conv2 output
  const Tensor* shortcut_y_ = nullptr; // shortcut conv output
  Tensor dst_;
  Tensor diff_sum_;       // dL/d(sum before the final ReLU)
  Tensor diff_y2_;        // dL/d conv2 output
  Tensor diff_shortcut_;  // dL/d shortcut conv output
  Tensor diff_src_;
  std::vector<double> planes_[3];
};

// depth = 6n + 2 with n >= 1 (20, 32, 44, 56, ...); throws pimqat::Error otherwise or for
// in_channels < 1 or classes < 2. Each layer's weights come from
// layer_init_stream(init_key, layer name) (nn/init.h): deterministic, independent of build order.
std::unique_ptr<Sequential> make_resnet(int depth, int in_channels, int classes, LayerFactory& factory,
                                        const RngKey& init_key);
// Same with the default FP32 factory.
std::unique_ptr<Sequential> make_resnet(int depth, int in_channels, int classes, const RngKey& init_key);

// "resnet20" -> 20 (resnet<6n+2>); throws pimqat::Error naming the valid choices otherwise.
int resnet_depth(const std::string& arch);

}  // namespace pimqat::nn
