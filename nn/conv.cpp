#include "nn/conv.h"

#include <omp.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <utility>

#include "core/error.h"

namespace pimqat::nn {

// Passes over fewer elements than this run on one thread (a parallel region costs more).
constexpr Index kParallelMin = Index{1} << 15;

std::string ConvGeometry::str() const {
  return std::to_string(kernel) + "x" + std::to_string(kernel) + " conv " + std::to_string(in_channels) + "->" +
         std::to_string(out_channels) + ", stride " + std::to_string(stride) + ", padding " + std::to_string(padding);
}

void validate(const ConvGeometry& g) {
  std::string problems;
  if (g.in_channels <= 0) problems += " in_channels must be positive (got " + std::to_string(g.in_channels) + ");";
  if (g.out_channels <= 0) problems += " out_channels must be positive (got " + std::to_string(g.out_channels) + ");";
  if (g.kernel <= 0) problems += " kernel must be positive (got " + std::to_string(g.kernel) + ");";
  if (g.stride <= 0) problems += " stride must be positive (got " + std::to_string(g.stride) + ");";
  if (g.padding < 0) problems += " padding must be >= 0 (got " + std::to_string(g.padding) + ");";
  if (!problems.empty()) throw Error("invalid convolution geometry:" + problems);
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::dims dims_of(const Shape& s) { return {s[0], s[1], s[2], s[3]}; }

Tag blocked_tag() { return channel_block() == 16 ? Tag::nChw16c : Tag::nChw8c; }

// Raw float storage for operands in an internal layout (sized in bytes by a memory descriptor).
struct Buffer {
  Tensor storage;
  float* reserve(std::size_t bytes) {
    const auto floats = static_cast<Index>((bytes + sizeof(float) - 1) / sizeof(float));
    if (storage.size() < floats) storage.resize(Shape{floats});
    return storage.data();
  }
};

// Scratch shared by every engine of a thread for operands that live only inside one call
// (blocked dst before its reorder, blocked diff_src, reordered weights). `owner`/`source` tag a
// buffer whose contents may be reused by a later call (the blocked diff_dst).
struct ThreadScratch {
  Buffer dst;
  Buffer diff_src;
  Buffer weight;
  Buffer diff_weight;
  Buffer diff_dst;
  Buffer diff_dst_weights;  // bwd-weights layout, when it differs from the bwd-data one
  Buffer src_weights;       // bwd-weights src layout, when it differs from forward's
  const void* diff_dst_owner = nullptr;
  const float* diff_dst_source = nullptr;
  std::uint64_t diff_dst_stamp = 0;
  bool diff_dst_data_ready = false;     // diff_dst holds the bwd-data layout copy
  bool diff_dst_weights_ready = false;  // diff_dst_weights holds the bwd-weights layout copy
};

ThreadScratch& scratch() {
  static thread_local ThreadScratch s;
  return s;
}

[[noreturn]] void rethrow_dnnl(const dnnl::error& e, const ConvGeometry& g, const Shape& src, const char* what) {
  throw Error(std::string("oneDNN failed in ") + what + " of a " + g.str() + " on src " + src.str() + ": " + e.what());
}

}  // namespace

Index channel_block() {
  static const Index block = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto avx512_core = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    return (isa & avx512_core) == avx512_core ? Index{16} : Index{8};
  }();
  return block;
}

namespace {
void check_blockable(const Tensor& t, const char* what) {
  if (t.rank() != 4 || t.dim(1) % channel_block() != 0)
    throw Error(std::string(what) + ": the blocked layout needs an (N, C, H, W) tensor with C a multiple of " +
                std::to_string(channel_block()) + "; got " + t.shape().str());
}
}  // namespace

namespace {
#if defined(__AVX512F__)
// GCC 12's AVX-512 headers trip -Wuninitialized on _mm512_undefined_ps (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// 16 x 16 transpose in registers: unpack ps, unpack pd, then two 128-bit lane shuffles.
inline void transpose16x16(const float* src, Index src_stride, float* dst, Index dst_stride) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_stride);
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // u[4m + q], 128-bit lane L: column 4L + q of rows 4m .. 4m+3.
  for (int m = 0; m < 4; ++m) {
    const __m512d a = _mm512_castps_pd(t[4 * m]), b = _mm512_castps_pd(t[4 * m + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * m + 1]), d = _mm512_castps_pd(t[4 * m + 3]);
    r[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int q = 0; q < 4; ++q) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xEE);
    const __m512 v2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xEE);
    _mm512_storeu_ps(dst + (q)*dst_stride, _mm512_shuffle_f32x4(v0, v2, 0x88));
    _mm512_storeu_ps(dst + (4 + q) * dst_stride, _mm512_shuffle_f32x4(v0, v2, 0xDD));
    _mm512_storeu_ps(dst + (8 + q) * dst_stride, _mm512_shuffle_f32x4(v1, v3, 0x88));
    _mm512_storeu_ps(dst + (12 + q) * dst_stride, _mm512_shuffle_f32x4(v1, v3, 0xDD));
  }
}
#pragma GCC diagnostic pop
#endif
}  // namespace

void transpose(const float* src, Index src_stride, Index rows, Index cols, float* dst, Index dst_stride) {
  Index i0 = 0;
#if defined(__AVX512F__)
  for (; i0 + 16 <= rows; i0 += 16) {
    Index j0 = 0;
    for (; j0 + 16 <= cols; j0 += 16)
      transpose16x16(src + i0 * src_stride + j0, src_stride, dst + j0 * dst_stride + i0, dst_stride);
    for (Index i = i0; i < i0 + 16; ++i)
      for (Index j = j0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
  }
#endif
  for (Index i = i0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

void to_blocked(const Tensor& nchw, Tensor& blocked) {
  check_blockable(nchw, "to_blocked");
  blocked.resize(nchw.shape());
  const Index b = channel_block();
  const Index chunks = nchw.dim(0) * (nchw.dim(1) / b);
  const Index plane = nchw.dim(2) * nchw.dim(3);
  const float* src = nchw.data();
  float* dst = blocked.data();
#pragma omp parallel for schedule(static) if (chunks * b * plane >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    transpose(src + k * b * plane, plane, b, plane, dst + k * b * plane, b);
  }
}

void to_nchw(const Tensor& blocked, Tensor& nchw) {
  check_blockable(blocked, "to_nchw");
  nchw.resize(blocked.shape());
  const Index b = channel_block();
  const Index chunks = blocked.dim(0) * (blocked.dim(1) / b);
  const Index plane = blocked.dim(2) * blocked.dim(3);
  const float* src = blocked.data();
  float* dst = nchw.data();
#pragma omp parallel for schedule(static) if (chunks * b * plane >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    transpose(src + k * b * plane, b, plane, b, dst + k * b * plane, plane);
  }
}

// One input shape's (and layout's) primitives. Reorders are empty when the user layout already is the one
// the kernel wants.
struct Plan {
  Layout layout = Layout::Nchw;
  Shape src_shape;
  Shape dst_shape;
  memory::desc user_src, user_dst, user_weight;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  std::optional<dnnl::reorder> src_to_fwd, weight_to_fwd, fwd_to_dst;

  bool has_backward = false;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_backward_weights bwd_weights;
  std::optional<dnnl::reorder> diff_dst_to_data, weight_to_data, data_to_diff_src, data_to_diff_src_add;
  std::optional<dnnl::reorder> diff_dst_to_weights, src_to_weights, weights_to_diff_weight;
  // The bwd-weights src: forward's internal copy, the user's src, or a separate reorder.
  enum class WeightsSrc { ForwardCopy, User, Reorder } weights_src = WeightsSrc::User;
  // The bwd-weights diff_dst: bwd-data's internal copy, the user's diff_dst, or a separate reorder.
  enum class WeightsDiffDst { DataCopy, User, Reorder } weights_diff_dst = WeightsDiffDst::User;
};

struct ConvEngine::Impl {
  std::vector<std::unique_ptr<Plan>> plans;
  Plan* latest = nullptr;  // plan of the latest forward
  dnnl::stream stream{cpu_engine()};
  // Forward's internal copy of src, for backward_weights.
  Buffer src_copy;
  const float* src_copy_source = nullptr;
  bool src_copy_valid = false;
  std::uint64_t stamp = 0;  // counts forward calls (invalidates cached diff_dst copies)
  static std::uint64_t next_id() {
    static std::uint64_t id = 0;
    return ++id;
  }

  Plan& plan_for(const ConvGeometry& g, const Shape& src_shape, const Shape& dst_shape, Layout layout);
  void make_backward(const ConvGeometry& g, Plan& plan);
  // The bwd-data layout copy of diff_dst (made if needed), as a memory.
  memory diff_dst_for_data(Plan& plan, const Tensor& diff_dst);
  memory diff_dst_for_weights(Plan& plan, const Tensor& diff_dst);
};

ConvEngine::ConvEngine(ConvGeometry g) : geometry_(g), impl_(std::make_unique<Impl>()) { validate(g); }
ConvEngine::~ConvEngine() = default;
ConvEngine::ConvEngine(ConvEngine&&) noexcept = default;
ConvEngine& ConvEngine::operator=(ConvEngine&&) noexcept = default;

Shape ConvEngine::output_shape(const Shape& src) const {
  const ConvGeometry& g = geometry_;
  if (src.rank() != 4 || src[1] != g.in_channels || src[0] <= 0)
    throw Error("convolution (" + g.str() + ") needs a src of shape (N, " + std::to_string(g.in_channels) +
                ", H, W) with N >= 1; got " + src.str());
  const Index oh = src[2] + 2 * g.padding >= g.kernel ? g.output_size(src[2]) : 0;
  const Index ow = src[3] + 2 * g.padding >= g.kernel ? g.output_size(src[3]) : 0;
  if (oh <= 0 || ow <= 0)
    throw Error("convolution (" + g.str() + "): input " + src.str() + " is smaller than the kernel even with padding");
  return {src[0], g.out_channels, oh, ow};
}

Plan& ConvEngine::Impl::plan_for(const ConvGeometry& g, const Shape& src_shape, const Shape& dst_shape,
                                 Layout layout) {
  for (auto& p : plans)
    if (p->src_shape == src_shape && p->layout == layout) return *p;
  auto plan = std::make_unique<Plan>();
  plan->layout = layout;
  plan->src_shape = src_shape;
  plan->dst_shape = dst_shape;
  const Tag user_tag = layout == Layout::Blocked ? blocked_tag() : Tag::nchw;
  plan->user_src = memory::desc(dims_of(src_shape), DataType::f32, user_tag);
  plan->user_dst = memory::desc(dims_of(dst_shape), DataType::f32, user_tag);
  plan->user_weight = memory::desc(dims_of(g.weight_shape()), DataType::f32, Tag::oihw);
  // NCHW callers: let oneDNN pick its fastest layouts and convert at the edges. Blocked callers:
  // the kernel works on their tensors directly.
  const Tag act_tag = layout == Layout::Blocked ? blocked_tag() : Tag::any;
  const memory::desc any_src(dims_of(src_shape), DataType::f32, act_tag);
  const memory::desc any_dst(dims_of(dst_shape), DataType::f32, act_tag);
  const memory::desc any_weight(dims_of(g.weight_shape()), DataType::f32, Tag::any);
  const memory::dims strides{g.stride, g.stride};
  const memory::dims padding{g.padding, g.padding};
  // Symmetric padding as PyTorch's; oneDNN checks OH = (H + 2 padding - k) / stride + 1 with the same floor.
  const memory::dims& padding_r = padding;
  try {
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                         any_src, any_weight, any_dst, strides, padding, padding_r);
    plan->fwd_pd = dnnl::convolution_forward::primitive_desc(desc, cpu_engine());
    plan->fwd = dnnl::convolution_forward(plan->fwd_pd);
    auto& e = cpu_engine();
    if (plan->fwd_pd.src_desc() != plan->user_src)
      plan->src_to_fwd = dnnl::reorder(dnnl::reorder::primitive_desc(e, plan->user_src, e, plan->fwd_pd.src_desc()));
    if (plan->fwd_pd.weights_desc() != plan->user_weight)
      plan->weight_to_fwd =
          dnnl::reorder(dnnl::reorder::primitive_desc(e, plan->user_weight, e, plan->fwd_pd.weights_desc()));
    if (plan->fwd_pd.dst_desc() != plan->user_dst)
      plan->fwd_to_dst = dnnl::reorder(dnnl::reorder::primitive_desc(e, plan->fwd_pd.dst_desc(), e, plan->user_dst));
  } catch (const dnnl::error& e) {
    rethrow_dnnl(e, g, src_shape, "creating the forward primitive");
  }
  plans.push_back(std::move(plan));
  return *plans.back();
}

void ConvEngine::Impl::make_backward(const ConvGeometry& g, Plan& plan) {
  if (plan.has_backward) return;
  const Tag act_tag = plan.layout == Layout::Blocked ? blocked_tag() : Tag::any;
  const memory::desc any_src(dims_of(plan.src_shape), DataType::f32, act_tag);
  const memory::desc any_dst(dims_of(plan.dst_shape), DataType::f32, act_tag);
  const memory::desc any_weight(dims_of(g.weight_shape()), DataType::f32, Tag::any);
  const memory::dims strides{g.stride, g.stride};
  const memory::dims padding{g.padding, g.padding};
  const memory::dims& padding_r = padding;
  auto& e = cpu_engine();
  try {
    dnnl::convolution_backward_data::desc data_desc(dnnl::algorithm::convolution_direct, any_src, any_weight, any_dst,
                                                    strides, padding, padding_r);
    plan.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(data_desc, e, plan.fwd_pd);
    plan.bwd_data = dnnl::convolution_backward_data(plan.bwd_data_pd);
    dnnl::convolution_backward_weights::desc weights_desc(dnnl::algorithm::convolution_direct, any_src, any_weight,
                                                          any_dst, strides, padding, padding_r);
    plan.bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(weights_desc, e, plan.fwd_pd);
    plan.bwd_weights = dnnl::convolution_backward_weights(plan.bwd_weights_pd);

    const auto& data_pd = plan.bwd_data_pd;
    if (data_pd.diff_dst_desc() != plan.user_dst)
      plan.diff_dst_to_data = dnnl::reorder(dnnl::reorder::primitive_desc(e, plan.user_dst, e, data_pd.diff_dst_desc()));
    if (data_pd.weights_desc() != plan.user_weight)
      plan.weight_to_data = dnnl::reorder(dnnl::reorder::primitive_desc(e, plan.user_weight, e, data_pd.weights_desc()));
    // Blocked diff_src -> NCHW, plain or with a sum post-op (dst = dst + converted src).
    dnnl::post_ops sum;
    sum.append_sum(1.0f);
    dnnl::primitive_attr add_attr;
    add_attr.set_post_ops(sum);
    if (data_pd.diff_src_desc() != plan.user_src) {
      plan.data_to_diff_src = dnnl::reorder(dnnl::reorder::primitive_desc(e, data_pd.diff_src_desc(), e, plan.user_src));
      plan.data_to_diff_src_add =
          dnnl::reorder(dnnl::reorder::primitive_desc(e, data_pd.diff_src_desc(), e, plan.user_src, add_attr));
    } else {
      // The kernel writes NCHW itself; Accumulate::Add goes through an identity reorder with the sum.
      plan.data_to_diff_src_add =
          dnnl::reorder(dnnl::reorder::primitive_desc(e, plan.user_src, e, plan.user_src, add_attr));
    }

    const auto& weights_pd = plan.bwd_weights_pd;
    if (weights_pd.src_desc() == plan.fwd_pd.src_desc()) {
      plan.weights_src = plan.src_to_fwd ? Plan::WeightsSrc::ForwardCopy : Plan::WeightsSrc::User;
    } else if (weights_pd.src_desc() == plan.user_src) {
      plan.weights_src = Plan::WeightsSrc::User;
    } else {
      plan.weights_src = Plan::WeightsSrc::Reorder;
      plan.src_to_weights = dnnl::reorder(dnnl::reorder::primitive_desc(e, plan.user_src, e, weights_pd.src_desc()));
    }
    if (weights_pd.diff_dst_desc() == data_pd.diff_dst_desc()) {
      plan.weights_diff_dst = plan.diff_dst_to_data ? Plan::WeightsDiffDst::DataCopy : Plan::WeightsDiffDst::User;
    } else if (weights_pd.diff_dst_desc() == plan.user_dst) {
      plan.weights_diff_dst = Plan::WeightsDiffDst::User;
    } else {
      plan.weights_diff_dst = Plan::WeightsDiffDst::Reorder;
      plan.diff_dst_to_weights =
          dnnl::reorder(dnnl::reorder::primitive_desc(e, plan.user_dst, e, weights_pd.diff_dst_desc()));
    }
    if (weights_pd.diff_weights_desc() != plan.user_weight)
      plan.weights_to_diff_weight =
          dnnl::reorder(dnnl::reorder::primitive_desc(e, weights_pd.diff_weights_desc(), e, plan.user_weight));
  } catch (const dnnl::error& err) {
    rethrow_dnnl(err, g, plan.src_shape, "creating the backward primitives");
  }
  plan.has_backward = true;
}

namespace {
memory user_memory(const memory::desc& desc, const float* data) {
  return memory(desc, cpu_engine(), const_cast<float*>(data));  // oneDNN reads, never writes, inputs
}
}  // namespace

bool ConvEngine::supports_blocked() const {
  return geometry_.in_channels % channel_block() == 0 && geometry_.out_channels % channel_block() == 0;
}

void ConvEngine::forward(const Tensor& src, const Tensor& weight, Tensor& dst, Layout layout) {
  const ConvGeometry& g = geometry_;
  const Shape dst_shape = output_shape(src.shape());
  if (!(weight.shape() == g.weight_shape()))
    throw Error("convolution (" + g.str() + ") needs weights of shape " + g.weight_shape().str() + "; got " +
                weight.shape().str());
  if (layout == Layout::Blocked && !supports_blocked())
    throw Error("convolution (" + g.str() + "): the blocked layout needs channel counts that are multiples of " +
                std::to_string(channel_block()));
  Impl& im = *impl_;
  Plan& plan = im.plan_for(g, src.shape(), dst_shape, layout);
  im.latest = &plan;
  ++im.stamp;
  dst.resize(dst_shape);
  ThreadScratch& s = scratch();
  if (s.diff_dst_owner == &im) s.diff_dst_owner = nullptr;  // a new forward starts a new backward
  auto& stream = im.stream;
  try {
    memory user_src = user_memory(plan.user_src, src.data());
    memory src_mem = user_src;
    if (plan.src_to_fwd) {
      src_mem = memory(plan.fwd_pd.src_desc(), cpu_engine(), im.src_copy.reserve(plan.fwd_pd.src_desc().get_size()));
      plan.src_to_fwd->execute(stream, user_src, src_mem);
      im.src_copy_source = src.data();
      im.src_copy_valid = true;
    } else {
      im.src_copy_valid = false;
    }
    memory weight_mem = user_memory(plan.user_weight, weight.data());
    if (plan.weight_to_fwd) {
      memory converted(plan.fwd_pd.weights_desc(), cpu_engine(), s.weight.reserve(plan.fwd_pd.weights_desc().get_size()));
      plan.weight_to_fwd->execute(stream, weight_mem, converted);
      weight_mem = converted;
    }
    memory user_dst(plan.user_dst, cpu_engine(), dst.data());
    memory dst_mem = plan.fwd_to_dst
                         ? memory(plan.fwd_pd.dst_desc(), cpu_engine(), s.dst.reserve(plan.fwd_pd.dst_desc().get_size()))
                         : user_dst;
    plan.fwd.execute(stream, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, weight_mem}, {DNNL_ARG_DST, dst_mem}});
    if (plan.fwd_to_dst) plan.fwd_to_dst->execute(stream, dst_mem, user_dst);
    stream.wait();
  } catch (const dnnl::error& e) {
    rethrow_dnnl(e, g, src.shape(), "forward");
  }
}

void ConvEngine::prepare_backward(const Shape& src_shape, Layout layout) {
  const ConvGeometry& g = geometry_;
  const Shape dst_shape = output_shape(src_shape);
  if (layout == Layout::Blocked && !supports_blocked())
    throw Error("convolution (" + g.str() + "): the blocked layout needs channel counts that are multiples of " +
                std::to_string(channel_block()));
  Impl& im = *impl_;
  Plan& plan = im.plan_for(g, src_shape, dst_shape, layout);
  im.latest = &plan;
  ++im.stamp;
  im.src_copy_valid = false;  // backward_weights converts its src afresh
  ThreadScratch& s = scratch();
  if (s.diff_dst_owner == &im) s.diff_dst_owner = nullptr;  // as forward: a new backward starts
  im.make_backward(g, plan);
}

memory ConvEngine::Impl::diff_dst_for_data(Plan& plan, const Tensor& diff_dst) {
  memory user = user_memory(plan.user_dst, diff_dst.data());
  if (!plan.diff_dst_to_data) return user;
  ThreadScratch& s = scratch();
  const auto& desc = plan.bwd_data_pd.diff_dst_desc();
  const bool same = s.diff_dst_owner == this && s.diff_dst_source == diff_dst.data() && s.diff_dst_stamp == stamp;
  if (!same) {
    s.diff_dst_owner = this;
    s.diff_dst_source = diff_dst.data();
    s.diff_dst_stamp = stamp;
    s.diff_dst_data_ready = false;
    s.diff_dst_weights_ready = false;
  }
  memory copy(desc, cpu_engine(), s.diff_dst.reserve(desc.get_size()));
  if (!s.diff_dst_data_ready) {
    plan.diff_dst_to_data->execute(stream, user, copy);
    s.diff_dst_data_ready = true;
  }
  return copy;
}

memory ConvEngine::Impl::diff_dst_for_weights(Plan& plan, const Tensor& diff_dst) {
  switch (plan.weights_diff_dst) {
    case Plan::WeightsDiffDst::User:
      return user_memory(plan.user_dst, diff_dst.data());
    case Plan::WeightsDiffDst::DataCopy:
      return diff_dst_for_data(plan, diff_dst);
    case Plan::WeightsDiffDst::Reorder:
      break;
  }
  ThreadScratch& s = scratch();
  const bool same = s.diff_dst_owner == this && s.diff_dst_source == diff_dst.data() && s.diff_dst_stamp == stamp;
  if (!same) {
    s.diff_dst_owner = this;
    s.diff_dst_source = diff_dst.data();
    s.diff_dst_stamp = stamp;
    s.diff_dst_data_ready = false;
    s.diff_dst_weights_ready = false;
  }
  const auto& desc = plan.bwd_weights_pd.diff_dst_desc();
  memory copy(desc, cpu_engine(), s.diff_dst_weights.reserve(desc.get_size()));
  if (!s.diff_dst_weights_ready) {
    memory user = user_memory(plan.user_dst, diff_dst.data());
    plan.diff_dst_to_weights->execute(stream, user, copy);
    s.diff_dst_weights_ready = true;
  }
  return copy;
}

void ConvEngine::backward_data(const Tensor& diff_dst, const Tensor& weight, Tensor& diff_src, Accumulate accumulate) {
  const ConvGeometry& g = geometry_;
  Impl& im = *impl_;
  if (!im.latest) throw Error("convolution (" + g.str() + "): backward_data called before any forward");
  Plan& plan = *im.latest;
  if (!(diff_dst.shape() == plan.dst_shape))
    throw Error("convolution (" + g.str() + "): diff_dst has shape " + diff_dst.shape().str() +
                ", the latest forward's dst was " + plan.dst_shape.str());
  if (!(weight.shape() == g.weight_shape()))
    throw Error("convolution (" + g.str() + ") needs weights of shape " + g.weight_shape().str() + "; got " +
                weight.shape().str());
  if (accumulate == Accumulate::Add) {
    if (!(diff_src.shape() == plan.src_shape))
      throw Error("convolution (" + g.str() + "): accumulating into diff_src of shape " + diff_src.shape().str() +
                  ", expected the forward src shape " + plan.src_shape.str());
  } else {
    diff_src.resize(plan.src_shape);
  }
  im.make_backward(g, plan);
  ThreadScratch& s = scratch();
  auto& stream = im.stream;
  try {
    memory diff_dst_mem = im.diff_dst_for_data(plan, diff_dst);
    memory weight_mem = user_memory(plan.user_weight, weight.data());
    if (plan.weight_to_data) {
      memory converted(plan.bwd_data_pd.weights_desc(), cpu_engine(),
                       s.weight.reserve(plan.bwd_data_pd.weights_desc().get_size()));
      plan.weight_to_data->execute(stream, weight_mem, converted);
      weight_mem = converted;
    }
    memory user_diff_src(plan.user_src, cpu_engine(), diff_src.data());
    const bool direct = !plan.data_to_diff_src && accumulate == Accumulate::Overwrite;
    const auto& out_desc = plan.bwd_data_pd.diff_src_desc();
    memory out = direct ? user_diff_src : memory(out_desc, cpu_engine(), s.diff_src.reserve(out_desc.get_size()));
    plan.bwd_data.execute(stream,
                          {{DNNL_ARG_DIFF_DST, diff_dst_mem}, {DNNL_ARG_WEIGHTS, weight_mem}, {DNNL_ARG_DIFF_SRC, out}});
    if (!direct) {
      auto& convert = accumulate == Accumulate::Add ? *plan.data_to_diff_src_add : *plan.data_to_diff_src;
      convert.execute(stream, out, user_diff_src);
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    rethrow_dnnl(e, g, plan.src_shape, "backward_data");
  }
}

void ConvEngine::backward_weights(const Tensor& src, const Tensor& diff_dst, Tensor& diff_weight) {
  const ConvGeometry& g = geometry_;
  Impl& im = *impl_;
  if (!im.latest) throw Error("convolution (" + g.str() + "): backward_weights called before any forward");
  Plan& plan = *im.latest;
  if (!(src.shape() == plan.src_shape) || !(diff_dst.shape() == plan.dst_shape))
    throw Error("convolution (" + g.str() + "): backward_weights got src " + src.shape().str() + " and diff_dst " +
                diff_dst.shape().str() + ", the latest forward had " + plan.src_shape.str() + " -> " +
                plan.dst_shape.str());
  im.make_backward(g, plan);
  diff_weight.resize(g.weight_shape());
  ThreadScratch& s = scratch();
  auto& stream = im.stream;
  try {
    const auto& pd = plan.bwd_weights_pd;
    memory src_mem = user_memory(plan.user_src, src.data());
    if (plan.weights_src == Plan::WeightsSrc::ForwardCopy) {
      if (im.src_copy_valid && im.src_copy_source == src.data()) {
        src_mem = memory(pd.src_desc(), cpu_engine(), im.src_copy.storage.data());
      } else {  // a different tensor than forward's: convert it now
        memory converted(pd.src_desc(), cpu_engine(), s.src_weights.reserve(pd.src_desc().get_size()));
        plan.src_to_fwd->execute(stream, src_mem, converted);
        src_mem = converted;
      }
    } else if (plan.weights_src == Plan::WeightsSrc::Reorder) {
      memory converted(pd.src_desc(), cpu_engine(), s.src_weights.reserve(pd.src_desc().get_size()));
      plan.src_to_weights->execute(stream, src_mem, converted);
      src_mem = converted;
    }
    memory diff_dst_mem = im.diff_dst_for_weights(plan, diff_dst);
    memory user_diff_weight(plan.user_weight, cpu_engine(), diff_weight.data());
    memory out = plan.weights_to_diff_weight
                     ? memory(pd.diff_weights_desc(), cpu_engine(), s.diff_weight.reserve(pd.diff_weights_desc().get_size()))
                     : user_diff_weight;
    plan.bwd_weights.execute(stream, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DIFF_DST, diff_dst_mem},
                                      {DNNL_ARG_DIFF_WEIGHTS, out}});
    if (plan.weights_to_diff_weight) plan.weights_to_diff_weight->execute(stream, out, user_diff_weight);
    stream.wait();
  } catch (const dnnl::error& e) {
    rethrow_dnnl(e, g, plan.src_shape, "backward_weights");
  }
}

std::string ConvEngine::implementation_info() const {
  const Plan* plan = impl_->latest;
  if (!plan) return "(no forward yet)";
  std::string info = std::string("fwd ") + plan->fwd_pd.impl_info_str();
  if (plan->has_backward)
    info += std::string(", bwd_data ") + plan->bwd_data_pd.impl_info_str() + ", bwd_weights " +
            plan->bwd_weights_pd.impl_info_str();
  return info;
}

// ---------------------------------------------------------------------------------------------

Conv2d::Conv2d(std::string name, ConvGeometry g, InputGradient input_gradient)
    : Layer(std::move(name)), engine_(g), input_gradient_(input_gradient) {
  weight_.name = this->name() + ".weight";
  weight_.value = Tensor(g.weight_shape());
  weight_.grad = Tensor(g.weight_shape());
}

const Tensor& Conv2d::forward(const Tensor& src, Mode mode) {
  engine_.forward(src, weight_.value, dst_);
  src_ = mode == Mode::Train ? &src : nullptr;
  layout_ = Layout::Nchw;
  return dst_;
}

const Tensor& Conv2d::backward(const Tensor& diff_dst) {
  if (layout_ != Layout::Nchw) throw Error("layer '" + name() + "': backward() after forward_blocked(); use backward_blocked()");
  return backward_any_layout(diff_dst);
}

const Tensor& Conv2d::backward_any_layout(const Tensor& diff_dst) {
  if (!src_) throw Error("layer '" + name() + "': backward() needs a forward() in Mode::Train first");
  if (input_gradient_ == InputGradient::Compute) engine_.backward_data(diff_dst, weight_.value, diff_src_);
  engine_.backward_weights(*src_, diff_dst, weight_.grad);
  if (input_gradient_ == InputGradient::Skip) diff_src_.resize(Shape{});
  return diff_src_;
}

// The engine remembers the layout of the latest forward; backward follows it.
const Tensor& Conv2d::forward_blocked(const Tensor& src, Mode mode) {
  engine_.forward(src, weight_.value, dst_, Layout::Blocked);
  src_ = mode == Mode::Train ? &src : nullptr;
  layout_ = Layout::Blocked;
  return dst_;
}

const Tensor& Conv2d::backward_blocked(const Tensor& diff_dst) {
  if (layout_ != Layout::Blocked) throw Error("layer '" + name() + "': backward_blocked() needs a forward_blocked() first");
  return backward_any_layout(diff_dst);
}

}  // namespace pimqat::nn
