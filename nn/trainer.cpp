#include "nn/trainer.h"

#include <chrono>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.h"
#include "core/progress.h"
#include "nn/loss.h"
#include "nn/schedule.h"

namespace pimqat::nn {

std::vector<Parameter*> parameters_of(Layer& model) {
  std::vector<Parameter*> out;
  model.collect_parameters(out);
  return out;
}

EvalStats evaluate(Layer& model, const Dataset& data, const AugmentOptions& normalization, int batch_size,
                   const std::atomic<bool>* stop) {
  SoftmaxCrossEntropy loss;
  Tensor batch;
  std::vector<std::int32_t> labels;
  std::vector<std::uint32_t> indices(static_cast<std::size_t>(data.size()));
  std::iota(indices.begin(), indices.end(), 0u);
  double loss_sum = 0;
  Index correct = 0;
  for (Index start = 0; start < data.size(); start += batch_size) {
    if (stop && stop->load(std::memory_order_relaxed)) throw Interrupted();
    const Index count = std::min<Index>(batch_size, data.size() - start);
    make_batch(data, indices.data() + start, count, normalization, nullptr, 0, batch, labels);
    const Tensor& logits = model.forward(batch, Mode::Eval);
    loss_sum += loss.forward(logits, labels) * static_cast<double>(count);
    correct += loss.correct();
  }
  EvalStats stats;
  stats.count = data.size();
  if (data.size() > 0) {
    stats.loss = loss_sum / static_cast<double>(data.size());
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  }
  return stats;
}

Trainer::Trainer(Layer& model, const TrainConfig& config, const Dataset& train, const Dataset& test,
                 AugmentOptions augmentation, const RngKey& key)
    : model_(model),
      config_(config),
      train_(train),
      test_(test),
      augmentation_(std::move(augmentation)),
      key_(key),
      parameters_(parameters_of(model)),
      optimizer_(parameters_, config.momentum, config.nesterov, config.weight_decay) {}

bool Trainer::run(int first_epoch, const std::function<void(const EpochStats&)>& on_epoch,
                  const std::atomic<bool>* stop, std::FILE* progress, ProgressStyle style,
                  const std::string& label) {
  const Index n = train_.size();
  const Index batch_size = config_.batch_size;
  // A last batch of one sample cannot be batch-normalized; it is dropped (documented in docs/training.md).
  Index steps = n / batch_size + ((n % batch_size) > 1 ? 1 : 0);
  if (steps == 0) throw Error("training set has " + std::to_string(n) + " images: too few for a batch");
  const LrScheduler scheduler(config_, static_cast<long>(steps));
  const bool augment = augmentation_.crop_padding > 0 || augmentation_.flip;

  SoftmaxCrossEntropy loss;
  Tensor batch;
  std::vector<std::int32_t> labels;
  std::vector<std::uint32_t> order(static_cast<std::size_t>(n));

  for (int epoch = first_epoch; epoch < config_.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), 0u);
    RandomStream order_stream(key_.with(Purpose::DataOrder, static_cast<std::uint64_t>(epoch)));
    shuffle_indices(order.data(), static_cast<std::uint32_t>(n), order_stream);
    const RngKey augment_key = key_.with(Purpose::Augmentation, static_cast<std::uint64_t>(epoch));

    Progress bar(label + "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(config_.epochs), n, progress,
                 "img", 30.0, style);
    double loss_sum = 0;
    Index correct = 0, seen = 0;
    double lr = config_.lr;
    for (Index step = 0; step < steps; ++step) {
      if (stop && stop->load(std::memory_order_relaxed)) return false;
      const Index first = step * batch_size;
      const Index count = std::min(batch_size, n - first);
      make_batch(train_, order.data() + first, count, augmentation_, augment ? &augment_key : nullptr,
                 static_cast<std::uint64_t>(first), batch, labels);
      const Tensor& logits = model_.forward(batch, Mode::Train);
      const double batch_loss = loss.forward_backward(logits, labels);
      if (!std::isfinite(batch_loss))
        throw ReproducibleError("training diverged: loss is " + std::to_string(batch_loss) + " at epoch " +
                    std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) +
                    " (try a lower train.lr)");
      model_.backward(loss.diff_logits());
      lr = scheduler.lr(epoch, static_cast<long>(step));
      optimizer_.step(lr);
      loss_sum += batch_loss * static_cast<double>(count);
      correct += loss.correct();
      seen += count;
      if (progress) {
        char extra[64];
        std::snprintf(extra, sizeof extra, "loss %.4f, acc %.2f%%", loss_sum / static_cast<double>(seen),
                      100.0 * static_cast<double>(correct) / static_cast<double>(seen));
        bar.update(seen, extra);
      }
    }
    EpochStats stats;
    stats.epoch = epoch;
    stats.lr = lr;
    stats.train_loss = loss_sum / static_cast<double>(seen);
    stats.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    AugmentOptions normalization = augmentation_;
    normalization.crop_padding = 0;
    normalization.flip = false;
    if (test_.size() > 0) {
      const EvalStats test = evaluate(model_, test_, normalization, 256);
      stats.test_loss = test.loss;
      stats.test_accuracy = test.accuracy;
    }
    char extra[96];
    std::snprintf(extra, sizeof extra, "train loss %.4f acc %.2f%%, test acc %.2f%%", stats.train_loss,
                  100 * stats.train_accuracy, 100 * stats.test_accuracy);
    bar.finish(extra);
    on_epoch(stats);
  }
  return true;
}

}  // namespace pimqat::nn
