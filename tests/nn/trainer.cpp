// Trainer, SGD, schedules and checkpoints: hand-computed SGD steps, schedule values, a tiny network
// that learns a tiny synthetic task, determinism, checkpoint round trip and bit-identical resume.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/threads.h"
#include "nn/checkpoint.h"
#include "nn/config.h"
#include "nn/qlayers.h"
#include "nn/resnet.h"
#include "nn/schedule.h"
#include "nn/trainer.h"

namespace pimqat::nn {
namespace {

// Two classes told apart by where the bright square is (top-left vs bottom-right), plus noise.
Dataset synthetic_dataset(Index count, std::uint64_t seed) {
  Dataset d;
  d.name = "synthetic";
  d.classes = 2;
  d.images.resize(Shape{count, 1, 8, 8});
  RandomStream stream(RngKey{seed, 0, Purpose::Operands, 0});
  for (Index n = 0; n < count; ++n) {
    const int label = static_cast<int>(stream.below(2));
    d.labels.push_back(label);
    for (Index h = 0; h < 8; ++h)
      for (Index w = 0; w < 8; ++w) {
        const bool bright = label == 0 ? (h < 4 && w < 4) : (h >= 4 && w >= 4);
        d.images.at(n, 0, h, w) = (bright ? 0.8f : 0.1f) + 0.2f * stream.uniform();
      }
  }
  return d;
}

TrainConfig tiny_config(int epochs) {
  TrainConfig c;
  c.epochs = epochs;
  c.batch_size = 16;
  c.lr = 0.05;
  c.schedule = LrSchedule::Cosine;
  return c;
}

std::vector<float> flat_parameters(Layer& model) {
  std::vector<float> out;
  for (Parameter* p : parameters_of(model)) out.insert(out.end(), p->value.data(), p->value.data() + p->value.size());
  std::vector<StateTensor> state;
  model.collect_state(state);
  for (const StateTensor& s : state) out.insert(out.end(), s.value->data(), s.value->data() + s.value->size());
  return out;
}

TEST(Sgd, MatchesHandComputedNesterovStepsWithWeightDecay) {
  Parameter p{"w", Tensor(Shape{2}), Tensor(Shape{2}), true};
  p.value[0] = 1.0f, p.value[1] = -2.0f;
  Sgd sgd({&p}, 0.9, true, 0.1);
  // Step 1: g = grad + 0.1 w; v = g; w -= lr (g + 0.9 v).
  p.grad[0] = 0.5f, p.grad[1] = 0.25f;
  sgd.step(0.1);
  const double g0 = 0.5 + 0.1 * 1.0, g1 = 0.25 + 0.1 * -2.0;
  double w0 = 1.0 - 0.1 * (g0 + 0.9 * g0), w1 = -2.0 - 0.1 * (g1 + 0.9 * g1);
  EXPECT_NEAR(p.value[0], w0, 1e-6);
  EXPECT_NEAR(p.value[1], w1, 1e-6);
  // Step 2 with the same gradient: v = 0.9 v + g.
  sgd.step(0.1);
  const double h0 = 0.5 + 0.1 * w0, v0 = 0.9 * g0 + h0;
  w0 -= 0.1 * (h0 + 0.9 * v0);
  EXPECT_NEAR(p.value[0], w0, 1e-6);
}

TEST(Sgd, NoDecayParametersIgnoreWeightDecay) {
  Parameter p{"bn.weight", Tensor(Shape{1}, 3.0f), Tensor(Shape{1}, 0.0f), false};
  Sgd sgd({&p}, 0.0, false, 0.5);
  sgd.step(1.0);
  EXPECT_EQ(p.value[0], 3.0f);
}

TEST(LrScheduler, CosineWarmupAndMultistepValues) {
  TrainConfig c;
  c.epochs = 4;
  c.lr = 0.2;
  c.warmup_epochs = 1;
  c.schedule = LrSchedule::Cosine;
  const LrScheduler cosine(c, 10);
  EXPECT_NEAR(cosine.lr(0, 0), 0.02, 1e-12);  // (0 + 1) / 10 of lr
  EXPECT_NEAR(cosine.lr(0, 9), 0.2, 1e-12);
  EXPECT_NEAR(cosine.lr(1, 0), 0.2, 1e-12);  // t = 0
  EXPECT_NEAR(cosine.lr(2, 5), 0.1, 1e-12);  // t = 15/30 = 1/2
  c.schedule = LrSchedule::Multistep;
  c.warmup_epochs = 0;
  c.milestones = {2, 3};
  c.gamma = 0.1;
  const LrScheduler steps(c, 10);
  EXPECT_NEAR(steps.lr(1, 9), 0.2, 1e-12);
  EXPECT_NEAR(steps.lr(2, 0), 0.02, 1e-12);
  EXPECT_NEAR(steps.lr(3, 4), 0.002, 1e-12);
}

TEST(Trainer, TinyResNetLearnsTinySyntheticTask) {
  set_threads(2);
  const Dataset train = synthetic_dataset(256, 1), test = synthetic_dataset(128, 2);
  const RngKey key{7, 0, Purpose::WeightInit, 0};
  auto model = make_resnet(20, 1, 2, key);
  Trainer trainer(*model, tiny_config(3), train, test, AugmentOptions{}, key);
  std::vector<EpochStats> history;
  ASSERT_TRUE(trainer.run(0, [&](const EpochStats& s) { history.push_back(s); }, nullptr, nullptr));
  ASSERT_EQ(history.size(), 3u);
  EXPECT_GT(history.back().test_accuracy, 0.95);
  EXPECT_LT(history.back().train_loss, history.front().train_loss);
}

TEST(Trainer, TinyQatResNetLearnsTinySyntheticTask) {
  set_threads(2);
  const Dataset train = synthetic_dataset(256, 1), test = synthetic_dataset(128, 2);
  const RngKey key{7, 0, Purpose::WeightInit, 0};
  ModelConfig m;
  m.weight_bits = 4;
  m.act_bits = 4;
  QatLayerFactory factory(m);
  auto model = make_resnet(20, 1, 2, factory, key);
  Trainer trainer(*model, tiny_config(3), train, test, AugmentOptions{}, key);
  std::vector<EpochStats> history;
  ASSERT_TRUE(trainer.run(0, [&](const EpochStats& s) { history.push_back(s); }, nullptr, nullptr));
  EXPECT_GT(history.back().test_accuracy, 0.9);
}

TEST(Trainer, SameSeedAndThreadsGiveSameLossBits) {
  set_threads(2);
  const Dataset train = synthetic_dataset(96, 3), test = synthetic_dataset(32, 4);
  AugmentOptions augmentation;
  augmentation.crop_padding = 1;
  augmentation.flip = true;
  std::vector<double> losses[2];
  for (auto& losses_of_run : losses) {
    const RngKey key{11, 5, Purpose::WeightInit, 0};
    auto model = make_resnet(20, 1, 2, key);
    Trainer trainer(*model, tiny_config(2), train, test, augmentation, key);
    trainer.run(0, [&](const EpochStats& s) { losses_of_run.push_back(s.train_loss); }, nullptr, nullptr);
  }
  ASSERT_EQ(losses[0].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(std::memcmp(&losses[0][i], &losses[1][i], sizeof(double)), 0);
}

TEST(Trainer, StopFlagInterruptsBeforeTheFirstBatch) {
  const Dataset train = synthetic_dataset(64, 3), test = synthetic_dataset(16, 4);
  const RngKey key{11, 5, Purpose::WeightInit, 0};
  auto model = make_resnet(20, 1, 2, key);
  Trainer trainer(*model, tiny_config(2), train, test, AugmentOptions{}, key);
  std::atomic<bool> stop{true};
  int epochs = 0;
  EXPECT_FALSE(trainer.run(0, [&](const EpochStats&) { ++epochs; }, &stop, nullptr));
  EXPECT_EQ(epochs, 0);
}

// Forwards to `inner`, counting the calls, and sets `flag` during call number `at`.
class FlagAtCall : public Layer {
 public:
  FlagAtCall(Layer& inner, std::atomic<bool>& flag, int at) : Layer("flag"), inner_(inner), flag_(flag), at_(at) {}
  const Tensor& forward(const Tensor& src, Mode mode) override {
    if (++calls == at_) flag_.store(true);
    return inner_.forward(src, mode);
  }
  const Tensor& backward(const Tensor& diff_dst) override { return inner_.backward(diff_dst); }
  int calls = 0;

 private:
  Layer& inner_;
  std::atomic<bool>& flag_;
  int at_;
};

TEST(Evaluate, StopFlagInterruptsAtTheNextBatch) {
  const Dataset test = synthetic_dataset(100, 4);  // 7 batches of 16 (the last one 4 images)
  const RngKey key{11, 5, Purpose::WeightInit, 0};
  auto model = make_resnet(20, 1, 2, key);
  std::atomic<bool> stop{false};
  FlagAtCall counted(*model, stop, 3);
  EXPECT_THROW(evaluate(counted, test, AugmentOptions{}, 16, &stop), Interrupted);
  EXPECT_EQ(counted.calls, 3);  // the batch during which the flag was set finished; no fourth
  // Without a flag, or with it never set, every batch runs and the result is the unflagged one.
  std::atomic<bool> never{false};
  FlagAtCall all(*model, never, 1000);
  const EvalStats with_flag = evaluate(all, test, AugmentOptions{}, 16, &never);
  EXPECT_EQ(all.calls, 7);
  const EvalStats without = evaluate(*model, test, AugmentOptions{}, 16);
  EXPECT_EQ(with_flag.loss, without.loss);
  EXPECT_EQ(with_flag.accuracy, without.accuracy);
}

TEST(Checkpoint, RoundTripAndBitIdenticalResume) {
  set_threads(2);
  const Dataset train = synthetic_dataset(96, 5), test = synthetic_dataset(32, 6);
  AugmentOptions augmentation;
  augmentation.crop_padding = 1;
  augmentation.flip = true;
  ModelConfig m;
  m.weight_bits = 4;
  m.act_bits = 4;
  const RngKey key{13, 0, Purpose::WeightInit, 0};
  const auto dir = std::filesystem::temp_directory_path() / ("pimqat_ckpt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "checkpoint.h5").string();

  // Uninterrupted: 3 epochs.
  QatLayerFactory factory(m);
  auto full = make_resnet(20, 1, 2, factory, key);
  Trainer full_trainer(*full, tiny_config(3), train, test, augmentation, key);
  full_trainer.run(0, [](const EpochStats&) {}, nullptr, nullptr);

  // Interrupted after epoch 1, checkpointed, restored into a fresh model, continued.
  {
    auto first = make_resnet(20, 1, 2, factory, key);
    Trainer t(*first, tiny_config(3), train, test, augmentation, key);
    CheckpointInfo info;
    info.config_yaml = "test";
    info.mean = {0.5f};
    info.stddev = {0.25f};
    std::atomic<bool> stop{false};
    t.run(0,
          [&](const EpochStats& s) {
            info.history.push_back(s);
            info.epochs_done = s.epoch + 1;
            save_checkpoint(path, *first, &t.optimizer(), info);
            stop = true;  // "killed" right after the first checkpoint
          },
          &stop, nullptr);
  }
  auto resumed = make_resnet(20, 1, 2, factory, RngKey{999, 0, Purpose::WeightInit, 0});  // other init: must be overwritten
  Trainer t(*resumed, tiny_config(3), train, test, augmentation, key);
  const CheckpointInfo info = load_checkpoint(path, *resumed, &t.optimizer());
  EXPECT_EQ(info.epochs_done, 1);
  EXPECT_EQ(info.config_yaml, "test");
  ASSERT_EQ(info.history.size(), 1u);
  EXPECT_EQ(info.mean, std::vector<float>{0.5f});
  t.run(info.epochs_done, [](const EpochStats&) {}, nullptr, nullptr);

  const std::vector<float> a = flat_parameters(*full), b = flat_parameters(*resumed);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "resume is not bit-identical";
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, WrongArchitectureAndMissingFileAreClearErrors) {
  const auto dir = std::filesystem::temp_directory_path() / ("pimqat_ckpt2_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "c.h5").string();
  auto small = make_resnet(20, 1, 2, RngKey{});
  save_checkpoint(path, *small, nullptr, CheckpointInfo{});
  auto other = make_resnet(20, 3, 2, RngKey{});  // 3 input channels: conv1 shape differs
  EXPECT_THROW(load_checkpoint(path, *other, nullptr), Error);
  auto deeper = make_resnet(32, 1, 2, RngKey{});
  try {
    load_checkpoint(path, *deeper, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_checkpoint_info((dir / "missing.h5").string()), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pimqat::nn

namespace pimqat::nn {
namespace {

// docs/examples/load_checkpoint.py (the documented h5py recipe) reads a checkpoint we write.
TEST(Checkpoint, DocumentedH5pyExampleReadsIt) {
  if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no h5py (apt-get install python3-h5py)";
  const auto dir = std::filesystem::temp_directory_path() / ("pimqat_ckpt3_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "checkpoint.h5").string();
  ModelConfig m;
  m.weight_bits = 4;
  m.act_bits = 4;
  QatLayerFactory factory(m);
  auto model = make_resnet(20, 1, 10, factory, RngKey{});
  CheckpointInfo info;
  info.epochs_done = 2;
  info.history.resize(2);
  info.history[1].test_accuracy = 0.875;
  save_checkpoint(path, *model, nullptr, info);
  const std::string out = (dir / "out.txt").string();
  const std::string command = std::string("/usr/bin/python3 ") + PIMQAT_SOURCE_DIR +
                              "/docs/examples/load_checkpoint.py " + path + " > " + out + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("epochs_done 2"), std::string::npos) << text;
  EXPECT_NE(text.find("last_test_accuracy 0.875"), std::string::npos) << text;
  EXPECT_NE(text.find("layer1.0.conv1.weight (16, 16, 3, 3) float32"), std::string::npos) << text;
  EXPECT_NE(text.find("layer1.0.conv1.alpha"), std::string::npos) << text;
  EXPECT_NE(text.find("fc.weight (10, 64) float32"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pimqat::nn
