// fuzz_h5spec: converts between HDF5 files and h5spec text (fuzz/h5spec.h), to turn a fuzz input
// into a file the real program reads (`pimqat analyze OUT.h5`) or a real file into a seed.
//   fuzz_h5spec build SPEC OUT.h5
//   fuzz_h5spec dump IN.h5 > SPEC
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "fuzz/h5spec.h"

int main(int argc, char** argv) {
  const std::string mode = argc == 4 || argc == 3 ? argv[1] : "";
  if (mode == "build" && argc == 4) {
    std::ifstream in(argv[2], std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    if (!in || !pimqat::fuzz::h5spec::build(s.str(), argv[3])) {
      std::fprintf(stderr, "fuzz_h5spec: cannot build %s from %s\n", argv[3], argv[2]);
      return 1;
    }
    return 0;
  }
  if (mode == "dump" && argc == 3) {
    const std::string spec = pimqat::fuzz::h5spec::dump(argv[2]);
    if (spec.empty()) {
      std::fprintf(stderr, "fuzz_h5spec: cannot read %s\n", argv[2]);
      return 1;
    }
    std::cout << spec;
    return 0;
  }
  std::fprintf(stderr, "usage: fuzz_h5spec build SPEC OUT.h5 | fuzz_h5spec dump IN.h5\n");
  return 2;
}
