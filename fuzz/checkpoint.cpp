// Fuzz target: checkpoints (nn/checkpoint.h read_checkpoint_info, load_checkpoint; layout in
// docs/checkpoint-format.md) into the small model of fuzz/fuzz_model.h, with and without the
// optimizer, with missing state an error and kept at its default.
// Input: h5spec text (fuzz/h5spec.h), or raw HDF5 bytes (see fuzz/hdf5_input.h).
// Property: a load that succeeds leaves every parameter with the shape the model gave it.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_model.h"
#include "fuzz/hdf5_input.h"
#include "nn/checkpoint.h"

using namespace pimqat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_path("checkpoint.h5");
  if (!fuzz::make_hdf5_input(data, size, path)) return 0;
  fuzz::expect_error_or_success("read_checkpoint_info", [&] { (void)nn::read_checkpoint_info(path); });
  for (const bool with_optimizer : {true, false})
    for (const auto missing : {nn::MissingState::Error, nn::MissingState::KeepDefault}) {
      fuzz::FuzzModel m = fuzz::make_fuzz_model();
      std::vector<Shape> shapes;
      for (const nn::Parameter* p : m.model->parameters()) shapes.push_back(p->value.shape());
      fuzz::expect_error_or_success("load_checkpoint", [&] {
        (void)nn::load_checkpoint(path, *m.model, with_optimizer ? m.optimizer.get() : nullptr, missing);
        const auto parameters = m.model->parameters();
        for (std::size_t i = 0; i < parameters.size(); ++i)
          if (!(parameters[i]->value.shape() == shapes[i]))
            fuzz::finding("load_checkpoint changed the shape of " + parameters[i]->name);
      });
    }
  return 0;
}
