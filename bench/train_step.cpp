// The pimqat side of bench/train_step_vs_torch.sh: one ResNet-20 training step (forward,
// softmax cross-entropy, backward, SGD with Nesterov momentum and weight decay) on random data,
// FP32 or digital QAT. Prints `images_per_second <value>`.
// Usage: train_step CHANNELS SIZE WEIGHT_BITS ACT_BITS [THREADS] [STEPS] [WARMUP]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/threads.h"
#include "nn/loss.h"
#include "nn/optimizer.h"
#include "nn/qlayers.h"
#include "nn/resnet.h"

int main(int argc, char** argv) {
  using namespace pimqat;
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s CHANNELS SIZE WEIGHT_BITS ACT_BITS [THREADS] [STEPS] [WARMUP]\n", argv[0]);
    return 2;
  }
  const int channels = std::atoi(argv[1]), size = std::atoi(argv[2]);
  ModelConfig m;
  m.weight_bits = std::atoi(argv[3]);
  m.act_bits = std::atoi(argv[4]);
  const int threads = argc > 5 ? std::atoi(argv[5]) : 2;
  const int steps = argc > 6 ? std::atoi(argv[6]) : 10;
  const int warmup = argc > 7 ? std::atoi(argv[7]) : 3;
  const int batch = 128;
  set_threads(threads);

  nn::QatLayerFactory factory(m);
  auto model = nn::make_resnet(20, channels, 10, factory, RngKey{0, 0, Purpose::WeightInit, 0});
  std::vector<nn::Parameter*> parameters;
  model->collect_parameters(parameters);
  nn::Sgd sgd(parameters, 0.9, true, 1e-4);
  nn::SoftmaxCrossEntropy loss;

  Tensor x(Shape{batch, channels, size, size});
  RandomStream stream(RngKey{1, 0, Purpose::Operands, 0});
  for (Index i = 0; i < x.size(); ++i) x[i] = stream.uniform();
  std::vector<std::int32_t> labels(batch);
  for (auto& l : labels) l = static_cast<std::int32_t>(stream.below(10));

  auto step = [&] {
    const Tensor& logits = model->forward(x, nn::Mode::Train);
    loss.forward_backward(logits, labels);
    model->backward(loss.diff_logits());
    sgd.step(0.05);
  };
  for (int i = 0; i < warmup; ++i) step();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("images_per_second %.1f\n", batch * steps / seconds);
  return 0;
}
