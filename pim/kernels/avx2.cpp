#include "pim/kernels/internal.h"
namespace pimqat::pim::detail {
bool gemm_avx2(const GemmPlan&) { return false; }
void extract_bits_avx2(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out) {
  extract_bits_portable(tile, groups, chunks, planes, out);
}
void pack_block_avx2(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out) {
  pack_block_portable(src, base, valid, out);
}
void gaussian_blocks_avx2(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out) {
  gaussian_blocks_portable(stream, blocks, count, out);
}
}  // namespace pimqat::pim::detail
