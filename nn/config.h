#pragma once
// Plain configuration structs of one experiment (no YAML here: runner/config parses and validates
// the YAML into these). Defaults are the documented defaults of docs/config.md.
#include <cstdint>
#include <string>
#include <vector>

namespace pimqat {

struct DataConfig {
  std::string name = "fashion-mnist";  // fashion-mnist | mnist | cifar10 | cifar100
  std::string dir;                     // empty: the default location (Debian's package for Fashion-MNIST)
  std::int64_t train_subset = 0;       // use only the first N training images (0 = all)
  std::int64_t test_subset = 0;        // use only the first N test images (0 = all)
  int crop_padding = -1;               // random-crop padding; -1 = dataset default (4 for CIFAR, 0 otherwise)
  int flip = -1;                       // horizontal flip; -1 = dataset default (on for CIFAR, off otherwise)
};

struct ModelConfig {
  std::string arch = "resnet20";  // resnet20 | resnet32 | resnet44 | resnet56
  int weight_bits = 0;            // 0 = FP32 (no quantization); 2..8 = digital QAT (DESIGN.md 2.1)
  int act_bits = 0;               // 0 = FP32 activations
  int first_last_weight_bits = 8; // bits of the first conv's weights and the final linear layer's weights and input
  float alpha_init = 8.0f;        // initial PACT clipping level
};

enum class LrSchedule { Multistep, Cosine };

struct TrainConfig {
  int epochs = 10;
  int batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 1e-4;
  LrSchedule schedule = LrSchedule::Cosine;
  std::vector<int> milestones;  // multistep: epochs at which lr *= gamma
  double gamma = 0.1;
  int warmup_epochs = 0;        // linear warm-up from lr/10... over these epochs (counted in steps)
  int threads = 0;              // OpenMP threads (0 = OMP_NUM_THREADS or all cores)
};

enum class Scheme { BitSerial, Differential, Native };
enum class Rescale { None, Backward, Both };

// PIM quantization in training (DESIGN.md 2.2-2.4). enabled = false is digital QAT (the baseline).
struct PimConfig {
  bool enabled = false;
  Scheme scheme = Scheme::BitSerial;
  int rows = 0;            // N; 0 = the scheme's default (144 bit-serial/differential, 9 native)
  int train_bits = 7;      // ADC resolution in training (TR)
  Rescale rescale = Rescale::Both;
  double adc_clip = 1.0;   // fraction of the theoretical range kept by the ADC (p_hi' = p_lo + clip * (p_hi - p_lo))
};

enum class CurveModel { Linear, Smooth, Measured };

// Monte Carlo evaluation on simulated dies (DESIGN.md 2.3, 2.5).
struct EvalConfig {
  int infer_bits = 7;         // ADC resolution at inference (IR)
  int dies = 1;               // number of simulated dies
  int first_die = 0;          // die ids are first_die .. first_die + dies - 1
  double noise_sigma = 0.0;   // thermal noise, LSB
  double gain_sigma = 0.0;    // gain spread sigma_gamma (paper's chip: 0.024)
  double offset_sigma = 0.0;  // offset spread sigma_o, LSB (paper's chip: 2.04)
  CurveModel curve = CurveModel::Linear;
  double curve_strength = 0.0;  // smooth non-linearity amplitude, LSB at mid-range
  std::string curve_file;       // measured curves (CSV or HDF5), curve = measured
  int bn_calibration = 0;       // batches of training images for BN calibration (0 = off)
  int batch_size = 256;
};

struct ExperimentConfig {
  std::uint64_t seed = 1;
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  PimConfig pim;
  EvalConfig eval;
};

}  // namespace pimqat
