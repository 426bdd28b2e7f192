#pragma once
/// Strata's own CUDA kernels, as host-callable launchers. The kernels (kernel_source.hpp) are
/// compiled at run time by NVRTC for the GPU at hand — once per element type and architecture,
/// then read from the disk cache (rtc/compiler.hpp) — so a program using the CUDA backend is
/// plain host C++: no nvcc, no Strata library to build or link.
///
/// Element types T: float, __half, __nv_bfloat16. Layouts: NCHW (f32) or NHWC with `cp`
/// channel slots per pixel (16-bit: C rounded up to 8).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/rtc/compiler.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/layers/layer.hpp"

namespace strata::cuda::kernels {

/// Where channel `c` of pixel `p` of image `n` lives: n·image + p·pixel + c·channel (elements).
struct Strides {
  std::int64_t image = 0;
  std::int64_t pixel = 0;
  std::int64_t channel = 0;
};

[[nodiscard]] inline Strides nchw_strides(int c, int hw) {
  return {static_cast<std::int64_t>(c) * hw, 1, hw};
}
[[nodiscard]] inline Strides nhwc_strides(int cp, int hw) {
  return {static_cast<std::int64_t>(cp) * hw, cp, 1};
}

/// Window parameters of a pool (c = channel slots).
struct PoolShape {
  int n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
  bool is_max;
  bool count_include_pad;
};

/// The window of conv `conv`'s fused pool (with `pooled`; else a 1×1 window of stride 1 over
/// the conv's map) for a batch of `n` with `c` channel slots: the map is the conv's (oh, ow).
[[nodiscard]] inline PoolShape conv_pool_shape(const OpDesc& conv, int n, int c, bool pooled = true) {
  const ConvGeom& g = conv.conv;
  if (!pooled || !conv.pool) {
    return {n, c, g.oh, g.ow, g.oh, g.ow, 1, 1, 1, 1, 0, 0, true, true};
  }
  const PoolEpilogue& p = *conv.pool;
  const LayerDesc& d = p.layer;
  return {n, c, g.oh, g.ow, p.out_shape.h, p.out_shape.w, d.kernel.h, d.kernel.w, d.stride.h,
          d.stride.w, d.padding.h, d.padding.w, p.kind == OpKind::max_pool, d.count_include_pad};
}

/// `s` as a literal of generated kernel source: "PoolShape{...}".
[[nodiscard]] inline std::string source_literal(const PoolShape& s) {
  std::ostringstream o;
  o << "PoolShape{" << s.n << ", " << s.c << ", " << s.h << ", " << s.w << ", " << s.oh << ", "
    << s.ow << ", " << s.kh << ", " << s.kw << ", " << s.sh << ", " << s.sw << ", " << s.ph
    << ", " << s.pw << ", " << (s.is_max ? "true" : "false") << ", "
    << (s.count_include_pad ? "true" : "false") << "}";
  return o.str();
}

/// A convolution in NHWC storage for the direct kernel: `cg` input channels per group as stored
/// (group g reads channels g·cg ..), `kd` filter rows (K, kh, kw, cg), `kp` output channel slots
/// (slots >= k are written as 0).
struct ConvShape {
  int n, cp, h, w, k, kd, kp, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups, cg;
  int creal;  ///< input channels per group that hold data (≤ cg; the rest are zero padding)
};

/// Upsampling (factors sh, sw) or adaptive average pooling of (n, c, h, w) to (oh, ow).
struct ResizeShape {
  int n, c, h, w, oh, ow, sh, sw;
  bool bilinear;
  bool align_corners;
};

/// A transposed convolution: input (n, c, h, w), output (k, oh, ow), PyTorch's kernel, stride,
/// padding, dilation and groups (output_padding is in oh, ow).
struct ConvTShape {
  int n, c, h, w, k, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

// The kernels take these structs by value: their layout must be what kernel_source.hpp declares.
static_assert(sizeof(ResizeShape) == 36 && offsetof(ResizeShape, bilinear) == 32 &&
                  sizeof(ConvTShape) == 64,
              "kernels: a parameter struct no longer matches its mirror in kernel_source.hpp");
static_assert(sizeof(Strides) == 24 && sizeof(PoolShape) == 52 && sizeof(ConvShape) == 80 &&
                  sizeof(ActDesc) == 12 && offsetof(ActDesc, alpha) == 4 &&
                  offsetof(PoolShape, is_max) == 48,
              "kernels: a parameter struct no longer matches its mirror in kernel_source.hpp");
static_assert(static_cast<int>(Act::mish) == 12,
              "kernels: strata::Act changed: kernel_source.hpp's Act and activate() mirror it");

namespace detail {

/// The name of element type T in kernel_source.hpp.
template <class T>
[[nodiscard]] constexpr const char* rtc_type() {
  if constexpr (std::is_same_v<T, float>) {
    return "float";
  } else if constexpr (std::is_same_v<T, __half>) {
    return "strata_rtc::f16";
  } else if constexpr (std::is_same_v<T, std::uint8_t>) {
    return "unsigned char";  // an input format only (uint8 images)
  } else {
    static_assert(std::is_same_v<T, __nv_bfloat16>,
                  "kernels: T is float, __half, __nv_bfloat16 (or std::uint8_t for an input)");
    return "strata_rtc::bf16";
  }
}

/// "strata_rtc::name<a, b, ...>".
[[nodiscard]] inline std::string kernel_name(const char* name, std::initializer_list<const char*> args) {
  std::string s = std::string("strata_rtc::") + name + "<";
  bool first = true;
  for (const char* a : args) {
    s += first ? "" : ", ";
    s += a;
    first = false;
  }
  return s + ">";
}

/// Every instantiation the launchers use for storage type T (float kernels included where a
/// 16-bit engine converts from or to f32).
template <class T>
[[nodiscard]] std::vector<std::string> instantiations() {
  const char* t = rtc_type<T>();
  constexpr bool half = !std::is_same_v<T, float>;
  std::vector<std::string> n;
  for (const char* i : {"int", "long long"}) {
    // The caller's input (f32, f16 or u8) into storage type T.
    for (const char* in : {"float", "strata_rtc::f16", "unsigned char"}) {
      n.push_back(kernel_name("convert_kernel", {in, t, i}));
      n.push_back(kernel_name("space_to_depth_kernel", {in, t, i}));
      if (half) {
        n.push_back(kernel_name("to_nhwc8_kernel", {in, t, i}));
      }
    }
    n.push_back(kernel_name("pointwise_kernel", {t, i}));
    n.push_back(kernel_name("pool_kernel", {t, i}));
    n.push_back(kernel_name("subsample_kernel", {t, i}));
    n.push_back(kernel_name("upsample_kernel", {t, i}));
    n.push_back(kernel_name("adaptive_avg_pool_kernel", {t, i}));
    n.push_back(kernel_name("channel_gate_kernel", {t, i}));
    n.push_back(kernel_name("pointwise8_kernel", {t, i}));  // (f32: NHWC slices, tf32)
    if (half) {
      n.push_back(kernel_name("convert_kernel", {t, t, i}));  // a copy into a concat's slice
      n.push_back(kernel_name("channel_gate8_kernel", {t, i}));
      n.push_back(kernel_name("convert_kernel", {t, "float", i}));
      n.push_back(kernel_name("pool8_kernel", {t, i}));
      n.push_back(kernel_name("im2col_kernel", {t, i}));  // lt_im2col (16-bit)
    }
  }
  n.push_back(kernel_name("global_avg_pool_kernel", {t}));
  n.push_back(kernel_name("global_avg_pool_rows_kernel", {t}));
  n.push_back(kernel_name("conv_pool_direct_kernel", {t}));
  n.push_back(kernel_name("conv_transpose_kernel", {t}));
  if (half) {
    n.push_back(kernel_name("conv_pool8_direct_kernel", {t}));
    for (const char* k : {"3", "5", "7"}) {
      for (const char* st : {"1", "2"}) {
        n.push_back(kernel_name("depthwise_kernel", {t, k, st}));
        n.push_back(kernel_name("depthwise_tiled_kernel", {t, k, st}));
      }
    }
    n.push_back(kernel_name("depthwise_rows_kernel", {t, "3", "1", "4"}));
    n.push_back(kernel_name("depthwise_rows_kernel", {t, "3", "2", "2"}));
    n.push_back(kernel_name("depthwise_pairs_kernel", {t, "3", "1", "4"}));
    n.push_back(kernel_name("depthwise_pairs_kernel", {t, "3", "2", "2"}));
    n.push_back(kernel_name("pixel_conv1x1_kernel", {t}));
    n.push_back(kernel_name("squeeze_excite_kernel", {t, "0"}));
    n.push_back(kernel_name("squeeze_excite_kernel", {t, "1"}));
    n.push_back(kernel_name("squeeze_excite_cluster_kernel", {t, "8"}));
    n.push_back(kernel_name("squeeze_excite_cluster_kernel", {t, "16"}));
  }
  n.push_back(kernel_name("softmax_kernel", {t, "float"}));
  if (half) {
    n.push_back(kernel_name("softmax_kernel", {t, t}));
  }
  return n;
}

/// Whether instantiation `name` is one of the depthwise kernels, which make up most of a 16-bit
/// library's compile time (their tap loops unrolled per filter size, stride and activation):
/// they are a library of their own (depthwise_library), compiled only when a depthwise step is
/// first prepared (an engine with a depthwise conv on Strata's kernels, or measured tuning timing
/// one).
[[nodiscard]] inline bool in_depthwise_library(std::string_view name) {
  return name.substr(0, 21) == "strata_rtc::depthwise";
}

/// The instantiations of one of T's two libraries: the depthwise kernels, or all the others.
template <class T, bool Depthwise>
[[nodiscard]] std::vector<std::string> library_instantiations() {
  std::vector<std::string> n;
  for (std::string& name : instantiations<T>()) {
    if (in_depthwise_library(name) == Depthwise) {
      n.push_back(std::move(name));
    }
  }
  return n;
}

}  // namespace detail

/// The programs each of Strata's kernel libraries is compiled as (rtc::compile_parts): fixed, so
/// the cache files do not depend on the machine's cores.
inline constexpr int library_parts = 8;

namespace detail {

/// One of T's kernel libraries (library_instantiations<T, Depthwise>) on the current device's
/// architecture: compiled (or read from the disk cache) and loaded on first use, then kept for
/// the life of the program. Thread-safe.
template <class T, bool Depthwise>
[[nodiscard]] const rtc::Library& load_library() {
  static std::mutex mutex;
  // Never freed: unloading at exit could run after the CUDA runtime has shut down.
  static auto* by_arch = new std::vector<std::pair<int, std::unique_ptr<rtc::Library>>>();
  // A failed build, kept: later look-ups (measured tuning prepares a step per variant) rethrow
  // it rather than compile for half a minute again.
  static auto* failed = new std::vector<std::pair<int, std::exception_ptr>>();
  const int arch = rtc::current_arch();
  const std::lock_guard lock(mutex);
  for (const auto& [a, lib] : *by_arch) {
    if (a == arch) {
      return *lib;
    }
  }
  for (const auto& [a, e] : *failed) {
    if (a == arch) {
      std::rethrow_exception(e);
    }
  }
  const std::vector<std::string> names = library_instantiations<T, Depthwise>();
  STRATA_CHECK(!names.empty(), "strata: no kernels in this library (the depthwise kernels are "
                               "for 16-bit storage only)");
  const std::string program = std::string("strata_kernels_") +
                              (std::is_same_v<T, float> ? "f32"
                               : std::is_same_v<T, __half> ? "f16"
                                                           : "bf16") +
                              (Depthwise ? "_depthwise" : "");
  // In library_parts programs compiled side by side: a cold build takes the time of the
  // slowest part rather than of the whole (the disk cache serves later runs either way).
  try {
    const rtc::CompiledParts c =
        rtc::compile_parts(kernel_source(), program, names, arch, library_parts,
                           std::max(1u, std::thread::hardware_concurrency()));
    by_arch->emplace_back(arch, std::make_unique<rtc::Library>(c));
  } catch (...) {
    failed->emplace_back(arch, std::current_exception());
    throw;
  }
  return *by_arch->back().second;
}

}  // namespace detail

/// The kernels for storage type T but the depthwise ones: compiled (or read from the disk cache)
/// and loaded on first use — an engine's construction — then kept for the life of the program.
/// Thread-safe.
template <class T>
[[nodiscard]] const rtc::Library& library() {
  return detail::load_library<T, false>();
}

/// The depthwise kernels for 16-bit storage type T: compiled or read from the disk cache on first
/// use (the first depthwise conv step's preparation, outside any graph capture — also the first
/// one measured tuning times, whichever variant it then keeps), then kept.
template <class T>
[[nodiscard]] const rtc::Library& depthwise_library() {
  return detail::load_library<T, true>();
}

namespace detail {

/// Whether 32-bit indices cover `n` elements.
/// (Below 2^31 − 2^28: a grid-stride loop of at most 2^20 blocks × 256 threads must not step past
/// INT_MAX.)
[[nodiscard]] inline bool fits32(std::int64_t n) {
  return n < (std::int64_t{1} << 31) - (std::int64_t{1} << 28);
}

/// Whether `p` may be read or written 16 bytes at a time.
[[nodiscard]] inline bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

/// Grid size for `n` items at 256 threads per block (grid-stride loops cover the rest).
[[nodiscard]] inline unsigned blocks_for(std::int64_t n, int threads = 256) {
  const std::int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 1048576 ? 1048576 : b));
}

/// The index type's name in the source.
[[nodiscard]] inline const char* index_type(bool small) { return small ? "int" : "long long"; }

/// Launches kernel `name` of T's library over `work` items, 256 threads per block.
template <class T, class... Args>
void run(const std::string& name, std::int64_t work, cudaStream_t s, Args... args) {
  rtc::launch(library<T>().kernel(name), blocks_for(work), 256, s, args...);
}

}  // namespace detail

/// The window of a pool that leaves a conv's output as it is: 1×1, stride 1, max.
[[nodiscard]] inline PoolShape identity_pool(const ConvShape& s) {
  return {s.n, s.kp, s.oh, s.ow, s.oh, s.ow, 1, 1, 1, 1, 0, 0, true, true};
}

/// The shared-memory filter of conv_pool8_direct_kernel for `s` in bytes, or 0 where that kernel
/// does not apply (f32 storage, 8 channels spanning two groups, a filter over 32 KiB).
template <class T>
[[nodiscard]] std::size_t conv_pool8_filter_bytes(const ConvShape& s) {
  const bool vec = s.cg % 8 == 0 && s.creal == s.cg && s.cp % 8 == 0;
  const std::size_t bytes = static_cast<std::size_t>(s.kh) * s.kw * (vec ? s.cg : s.creal) * s.kp * 4;
  const bool fits = sizeof(T) == 2 && s.kp % 8 == 0 &&
                    (s.groups == 1 || (s.kd / s.groups) % 8 == 0) && bytes <= (32u << 10);
  return fits ? bytes : 0;
}

/// conv_direct with a max/avg pool `p` over its output fused: y (the pooled map) =
/// pool(act(conv(x, w) + bias[k] + z)); the unpooled map is never stored.
template <class T>
void conv_pool_direct(const T* x, const T* w, const float* bias, const T* z, T* y, ConvShape s,
                      PoolShape p, ActDesc act, cudaStream_t stream) {
  const std::size_t filter = conv_pool8_filter_bytes<T>(s);
  if (filter > 0) {
    const std::int64_t work = static_cast<std::int64_t>(s.n) * p.oh * p.ow * (s.kp / 8);
    rtc::launch_shared(library<T>().kernel(detail::kernel_name(
                           "conv_pool8_direct_kernel", {detail::rtc_type<T>()})),
                       std::min(detail::blocks_for(work), 8192u), 256, filter, stream, x, w, bias,
                       z, y, s, p, act);
    return;
  }
  const std::int64_t work = static_cast<std::int64_t>(s.n) * p.oh * p.ow * s.kp;
  detail::run<T>(detail::kernel_name("conv_pool_direct_kernel", {detail::rtc_type<T>()}), work,
                 stream, x, w, bias, z, y, s, p, act);
}

/// Direct convolution, NHWC, f32 accumulation, with the epilogue fused:
/// y = act(conv(x, w) + bias[k] + z). The fallback for convolutions cuDNN has no algorithm
/// for (16-bit grouped convolutions whose channels are not a multiple of 8; tf32's grouped and
/// dilated ones). The pooled kernel
/// with identity_pool (one kernel for both).
template <class T>
void conv_direct(const T* x, const T* w, const float* bias, const T* z, T* y, ConvShape s,
                 ActDesc act, cudaStream_t stream) {
  conv_pool_direct(x, w, bias, z, y, s, identity_pool(s), act, stream);
}

namespace detail {

/// Kernel `kernel`<T, taps, stride> of depthwise_library for those of `s`, or <T, taps, stride,
/// `strip`> where strip is given.
template <class T>
[[nodiscard]] cudaKernel_t depthwise_lookup(const char* kernel, const ConvShape& s,
                                            const char* strip = nullptr) {
  STRATA_CHECK((!std::is_same_v<T, float>), "the depthwise kernel is for 16-bit NHWC storage");
  const std::string k = std::to_string(s.kh);
  const std::string st = std::to_string(s.sh);
  return depthwise_library<T>().kernel(
      strip != nullptr ? kernel_name(kernel, {rtc_type<T>(), k.c_str(), st.c_str(), strip})
                       : kernel_name(kernel, {rtc_type<T>(), k.c_str(), st.c_str()}));
}

}  // namespace detail

/// depthwise()'s kernel for the filter size and stride of `s`.
template <class T>
[[nodiscard]] cudaKernel_t depthwise_kernel(const ConvShape& s) {
  return detail::depthwise_lookup<T>("depthwise_kernel", s);
}

/// Depthwise convolution of 16-bit NHWC storage (storage.hpp: depthwise_runs says which convs):
/// y = act(conv(in_act(x), w) + bias[k] + z), where `in_act` is the producer's activation
/// deferred into this read (Act::none: x as stored). Filters (k, kh, kw) as stored; `kernel`:
/// depthwise_kernel<T>(s).
template <class T>
void depthwise(cudaKernel_t kernel, const T* x, const T* w, const float* bias, const T* z, T* y,
               ConvShape s, ActDesc in_act, ActDesc act, cudaStream_t stream) {
  const int tiles_w = (s.ow + 7) / 8;
  const int tiles_h = (s.oh + 7) / 8;
  const int chunks = (s.cp + 31) / 32;
  const std::int64_t blocks = static_cast<std::int64_t>(s.n) * tiles_h * tiles_w * chunks;
  STRATA_CHECK(blocks < (std::int64_t{1} << 31), "depthwise: " << blocks << " blocks");
  const std::size_t rows = 7 * static_cast<std::size_t>(s.sh) + (s.kh - 1) * s.dh + 1;
  const std::size_t cols = 7 * static_cast<std::size_t>(s.sw) + (s.kw - 1) * s.dw + 1;
  const std::size_t shared = static_cast<std::size_t>(s.kh) * s.kw * 32 * 4 + rows * cols * 32 * 2;
  rtc::launch_shared(kernel, static_cast<unsigned>(blocks), 256, shared, stream, x, w, bias, z, y,
                     s, in_act, act, tiles_w, tiles_h, chunks);
}

/// Attribute `a` of the current device; nothing where no device answers (on a machine without
/// a GPU the host-side choices are still made, and tested).
[[nodiscard]] inline std::optional<int> device_attribute(cudaDeviceAttr a) {
  int device = 0;
  int v = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&v, a, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  return v;
}

/// depthwise_tiled's shared memory a block: the filters (f32) and two input patches.
[[nodiscard]] inline std::size_t depthwise_tiled_shared(const ConvShape& s) {
  const std::size_t rows = 7 * static_cast<std::size_t>(s.sh) + (s.kh - 1) * s.dh + 1;
  const std::size_t cols = 15 * static_cast<std::size_t>(s.sw) + (s.kw - 1) * s.dw + 1;
  return static_cast<std::size_t>(s.kh) * s.kw * 32 * 4 + 2 * rows * cols * 32 * 2;
}

/// depthwise_tiled's kernel for the filter size and stride of `s`.
template <class T>
[[nodiscard]] cudaKernel_t depthwise_tiled_kernel(const ConvShape& s) {
  return detail::depthwise_lookup<T>("depthwise_tiled_kernel", s);
}

/// depthwise_tiled's work: tiles of 8×16 output pixels, times 32-slot channel chunks.
[[nodiscard]] inline std::int64_t depthwise_tiled_chunks(const ConvShape& s) { return (s.cp + 31) / 32; }
[[nodiscard]] inline std::int64_t depthwise_tiled_tiles(const ConvShape& s) {
  return static_cast<std::int64_t>(s.n) * ((s.oh + 7) / 8) * ((s.ow + 15) / 16);
}

/// The depthwise convolution of depthwise() by `grid` persistent blocks of 256 threads
/// (depthwise_tiled_kernel; a multiple of the channel chunks) over tiles of 8×16 pixels, the next
/// tile's patch copied while this one is computed; `shared`: depthwise_tiled_shared(s).
template <class T>
void depthwise_tiled(cudaKernel_t kernel, unsigned grid, std::size_t shared, const T* x,
                     const T* w, const float* bias, const T* z, T* y, ConvShape s,
                     ActDesc in_act, ActDesc act, cudaStream_t stream) {
  rtc::launch_shared(kernel, grid, 256, shared, stream, x, w, bias, z, y, s, in_act, act,
                     (s.ow + 15) / 16, (s.oh + 7) / 8, static_cast<int>(depthwise_tiled_chunks(s)));
}

namespace detail {

/// The error for a depthwise conv `s` that kernel `kernel` does not take.
[[nodiscard]] inline std::string depthwise_unfit(const char* kernel, const ConvShape& s,
                                                 Act in_act) {
  std::ostringstream os;
  os << kernel << ": " << s.kh << "x" << s.kw << " taps, stride " << s.sh << ", dilation " << s.dh
     << ", activation on load " << static_cast<int>(in_act) << " is not a case it takes";
  return os.str();
}

}  // namespace detail

/// Whether depthwise_rows runs depthwise conv `s` whose input the producer's activation `in_act`
/// is deferred into: 3×3 taps, dilation 1, 16-bit vectors of channels, stride 1 or 2, and an
/// activation on load that the kernel has compiled in (none, ReLU, clip, SiLU, hardswish,
/// hardsigmoid).
[[nodiscard]] inline bool depthwise_rows_fits(const ConvShape& s, Act in_act) {
  const bool act_in = in_act == Act::none || in_act == Act::relu || in_act == Act::clip ||
                      in_act == Act::silu || in_act == Act::hardswish || in_act == Act::hardsigmoid;
  return act_in && s.kh == 3 && s.kw == 3 && s.dh == 1 && s.dw == 1 && (s.sh == 1 || s.sh == 2) &&
         s.sw == s.sh && s.cp % 8 == 0;
}

/// depthwise_rows' output rows a thread: 4 at stride 1, 2 at stride 2 (on an H200 each beat the
/// other strip on every large MobileNetV2 layer of its stride at batch 256).
/// (5×5 taps at these strips — 128 and 126 registers for sm_90, no spills — lost to cuDNN with
/// its activation passes on all six of EfficientNet-B0's 5×5 layers at batch 256, by 1.2-2.1x on
/// an H200: not compiled in.)
[[nodiscard]] inline int depthwise_rows_strip(const ConvShape& s) { return s.sh == 1 ? 4 : 2; }

/// depthwise_rows' channel vectors a block: the largest divisor of the map's vectors (cp / 8)
/// up to 16, so no block has idle channel lanes.
[[nodiscard]] inline int depthwise_rows_gc(const ConvShape& s) {
  const int g = s.cp / 8;
  for (int d = std::min(g, 16); d > 1; --d) {
    if (g % d == 0) {
      return d;
    }
  }
  return 1;
}

/// depthwise_rows' shared memory a block: its channels' filters as f32.
[[nodiscard]] inline std::size_t depthwise_rows_shared(const ConvShape& s) {
  return static_cast<std::size_t>(s.kh) * s.kw * depthwise_rows_gc(s) * 8 * sizeof(float);
}

/// depthwise_rows' launch for conv `s`: its kernel (looked up once, by the step that keeps it),
/// grid, block and the kernel's chunking arguments.
struct RowsLaunch {
  cudaKernel_t kernel = nullptr;
  unsigned blocks = 0;
  unsigned threads = 0;
  std::size_t shared = 0;
  int gc = 0;      ///< channel vectors a block
  int strips = 0;  ///< strips of output rows a map
  int chunks = 0;  ///< channel chunks of gc vectors
};

/// depthwise_rows' grid for conv `s`, without its kernel: blocks of up to 128 threads, gc
/// channel vectors by consecutive output columns (the kernel's (image, strip, column) units).
[[nodiscard]] inline RowsLaunch depthwise_rows_grid(const ConvShape& s) {
  RowsLaunch l;
  const int r = depthwise_rows_strip(s);
  l.gc = depthwise_rows_gc(s);
  const int per = 128 / l.gc;
  l.strips = (s.oh + r - 1) / r;
  const std::int64_t columns = static_cast<std::int64_t>(s.n) * l.strips * s.ow;
  l.chunks = s.cp / 8 / l.gc;
  const std::int64_t blocks = (columns + per - 1) / per * l.chunks;
  STRATA_CHECK(blocks < (std::int64_t{1} << 31), "depthwise: " << blocks << " blocks");
  l.blocks = static_cast<unsigned>(blocks);
  l.threads = static_cast<unsigned>(l.gc * per);
  l.shared = depthwise_rows_shared(s);
  return l;
}

/// The launch of depthwise_rows for conv `s` with the producer's activation `in_act` on load:
/// depthwise_rows_grid and the kernel for s's taps, stride and strip.
template <class T>
[[nodiscard]] RowsLaunch depthwise_rows_launch(const ConvShape& s, Act in_act) {
  STRATA_CHECK(depthwise_rows_fits(s, in_act),
               detail::depthwise_unfit("depthwise_rows", s, in_act));
  RowsLaunch l = depthwise_rows_grid(s);
  l.kernel = detail::depthwise_lookup<T>("depthwise_rows_kernel", s,
                                         std::to_string(depthwise_rows_strip(s)).c_str());
  return l;
}

/// The depthwise convolution of depthwise() with no staged patch (depthwise_rows_kernel): each
/// thread 8 channels of depthwise_rows_strip(s) vertically adjacent output pixels, straight from
/// global memory, by launch `l` (depthwise_rows_launch of the same s and in_act.kind).
template <class T>
void depthwise_rows(const RowsLaunch& l, const T* x, const T* w, const float* bias, const T* z,
                    T* y, ConvShape s, ActDesc in_act, ActDesc act, cudaStream_t stream) {
  rtc::launch_shared(l.kernel, l.blocks, l.threads, l.shared, stream, x, w, bias, z, y, s, in_act,
                     act, l.gc, l.strips, l.chunks);
}

/// Whether depthwise_pairs runs depthwise conv `s` whose input the producer's activation `in_act`
/// is deferred into: the strip kernel's cases (depthwise_rows_fits: 3×3, dilation 1, stride 1 or
/// 2, the activations on load compiled in), the output's slots those of the input.
/// (Its 5×5 forms — strips of 2 and 1 rows, 178-192 registers for sm_90 — lost to cuDNN with its
/// activation passes on all six of EfficientNet-B0's distinct 5×5 layers at batch 256 on an
/// H200, by 1.4-2.5x, and took ~15 s each of the depthwise library's cold compile: not compiled
/// in. The kernel source still takes K = 5.)
[[nodiscard]] inline bool depthwise_pairs_fits(const ConvShape& s, Act in_act) {
  return depthwise_rows_fits(s, in_act) && s.kp == s.cp;
}

/// depthwise_pairs' output rows a thread: the strip kernel's (4 at stride 1, 2 at stride 2).
[[nodiscard]] inline int depthwise_pairs_strip(const ConvShape& s) {
  return depthwise_rows_strip(s);
}

/// depthwise_pairs' launch: its kernel, blocks of 256 threads, and the kernel's column groups
/// (of 8 output columns a thread) and strips.
struct PairsLaunch {
  cudaKernel_t kernel = nullptr;
  unsigned blocks = 0;
  int col_groups = 0;
  int strips = 0;
};

/// depthwise_pairs' grid for conv `s`, without its kernel: a thread per (image, strip, group of
/// 8 output columns, channel pair), blocks of 256.
[[nodiscard]] inline PairsLaunch depthwise_pairs_grid(const ConvShape& s) {
  PairsLaunch l;
  const int r = depthwise_pairs_strip(s);
  l.col_groups = (s.ow + 7) / 8;
  l.strips = (s.oh + r - 1) / r;
  const std::int64_t threads =
      static_cast<std::int64_t>(s.n) * l.strips * l.col_groups * (s.cp / 2);
  const std::int64_t blocks = (threads + 255) / 256;
  STRATA_CHECK(blocks < (std::int64_t{1} << 31), "depthwise_pairs: " << blocks << " blocks");
  l.blocks = static_cast<unsigned>(blocks);
  return l;
}

/// depthwise_pairs' launch for conv `s` with the producer's activation `in_act` on load:
/// depthwise_pairs_grid and the kernel for s's taps, stride and strip.
template <class T>
[[nodiscard]] PairsLaunch depthwise_pairs_launch(const ConvShape& s, Act in_act) {
  STRATA_CHECK(depthwise_pairs_fits(s, in_act),
               detail::depthwise_unfit("depthwise_pairs", s, in_act));
  PairsLaunch l = depthwise_pairs_grid(s);
  l.kernel = detail::depthwise_lookup<T>("depthwise_pairs_kernel", s,
                                         std::to_string(depthwise_pairs_strip(s)).c_str());
  return l;
}

/// The depthwise convolution by channel pairs (depthwise_pairs_kernel): each thread 2 channels of
/// a strip of depthwise_pairs_strip(s) output rows, sliding over 8 output columns with its input
/// window and filters in registers, by launch `l` (depthwise_pairs_launch of the same s and
/// in_act.kind).
template <class T>
void depthwise_pairs(const PairsLaunch& l, const T* x, const T* w, const float* bias, const T* z,
                     T* y, ConvShape s, ActDesc in_act, ActDesc act, cudaStream_t stream) {
  rtc::launch_shared(l.kernel, l.blocks, 256, 0, stream, x, w, bias, z, y, s, in_act, act,
                     l.col_groups, l.strips);
}

/// pixel_conv1x1's lanes per output: the smallest power of two that gives each lane at most one
/// 16-byte vector of the `cp` input slots, up to 32 (2 for 16 slots; 32 from 129 slots on, where
/// lanes take more than one vector or some idle).
[[nodiscard]] inline int pixel_conv1x1_lanes(int cp) {
  int lanes = 1;
  while (lanes < 32 && lanes * 8 < cp) {
    lanes *= 2;
  }
  return lanes;
}

/// A 1×1 convolution of a 1×1 map, 16-bit (storage.hpp: pixel_conv1x1_runs): y (n, kp) =
/// act(w (kp, cp) · in_act(x (n, cp)) + bias); slots at or past k written as 0.
template <class T>
void pixel_conv1x1(const T* x, const T* w, const float* bias, T* y, int n, int cp, int k, int kp,
                   ActDesc in_act, ActDesc act, cudaStream_t stream) {
  STRATA_CHECK((!std::is_same_v<T, float>), "pixel_conv1x1 is for 16-bit storage");
  const int lanes = pixel_conv1x1_lanes(cp);
  detail::run<T>(detail::kernel_name("pixel_conv1x1_kernel", {detail::rtc_type<T>()}),
                 static_cast<std::int64_t>(n) * kp * lanes, stream, x, w, bias, y, n, cp, k, kp,
                 in_act, act, lanes);
}

/// How many blocks squeeze_excite splits each image's pool over: enough for about two blocks
/// an SM in all, at least 8 pixels a block, at most `most`; 1 (no scratch, no counters) when the
/// batch alone fills the GPU.
[[nodiscard]] inline int squeeze_excite_splits(int n, int hw, int sms, int most = 1 << 30) {
  const std::int64_t want = (2 * static_cast<std::int64_t>(sms) + n - 1) / n;
  return static_cast<int>(std::max<std::int64_t>(
      1, std::min<std::int64_t>({want, hw / 8, static_cast<std::int64_t>(most)})));
}

/// A squeeze-excite gate, 16-bit NHWC (tactics/squeeze_excite.hpp): y (n, k2p) =
/// act2(w2 (k2p, k1p) · in_act2(act1(w1 (k1p, cp) · mean_hw(x (n, hw, cp)) + b1)) + b2), each
/// intermediate rounded to T as the unfused path stores it. With splits > 1 (squeeze_excite_splits)
/// `partial` holds n · splits · cp floats and `counters` n zeroed unsigneds, left zeroed; with
/// splits = 1, `row_blocks` blocks an image each pool the whole map and run fc1, then a share of
/// fc2's outputs. `form` 1: the same sums, their loads issued together (squeeze_excite_kernel).
template <class T>
void squeeze_excite(const T* x, const T* w1, const float* b1, const T* w2, const float* b2, T* y,
                    int n, int cp, int hw, int k1, int k1p, int k2, int k2p, ActDesc act1,
                    ActDesc in_act2, ActDesc act2, int splits, int row_blocks, float* partial,
                    unsigned* counters, cudaStream_t stream, int form = 0) {
  STRATA_CHECK((!std::is_same_v<T, float>), "squeeze_excite is for 16-bit storage");
  STRATA_CHECK(cp % 8 == 0 && k1p % 8 == 0 && cp <= squeeze_excite_max_channels &&
                   k1p <= squeeze_excite_max_squeezed && splits >= 1 && row_blocks >= 1 &&
                   (splits == 1 || (row_blocks == 1 && partial != nullptr && counters != nullptr)),
               "squeeze_excite: " << cp << " channel slots squeezed to " << k1p
                                  << " (multiples of 8, at most " << squeeze_excite_max_channels
                                  << " and " << squeeze_excite_max_squeezed << "), " << splits
                                  << " splits, " << row_blocks << " row blocks");
  const std::int64_t blocks = static_cast<std::int64_t>(n) * (splits > 1 ? splits : row_blocks);
  STRATA_CHECK(form == 0 || form == 1, "squeeze_excite: no form " << form);
  rtc::launch(library<T>().kernel(detail::kernel_name("squeeze_excite_kernel",
                                                      {detail::rtc_type<T>(), form == 0 ? "0" : "1"})),
              static_cast<unsigned>(std::min<std::int64_t>(blocks, 1 << 20)), 256, stream, x, w1,
              b1, w2, b2, y, n, cp, hw, k1, k1p, k2, k2p, act1, in_act2, act2, splits, row_blocks,
              partial, counters);
}

/// squeeze_excite's cluster kernel for clusters of `cluster` blocks (8 or 16; above 8 the caller
/// lets it run them: cudaFuncAttributeNonPortableClusterSizeAllowed).
template <class T>
[[nodiscard]] cudaKernel_t squeeze_excite_cluster_kernel(int cluster) {
  STRATA_CHECK(cluster == 8 || cluster == 16, "squeeze_excite: no cluster of " << cluster << " blocks");
  return library<T>().kernel(detail::kernel_name("squeeze_excite_cluster_kernel",
                                                 {detail::rtc_type<T>(), cluster == 8 ? "8" : "16"}));
}

/// A squeeze-excite gate as kernels::squeeze_excite computes it (w2 chunk-major), a thread-block
/// cluster of `cluster` blocks an image (squeeze_excite_cluster_kernel; compute capability 9.0
/// on): the pool split over the cluster's blocks, the sums and fc1's outputs exchanged through
/// distributed shared memory, no scratch.
/// `k`: squeeze_excite_cluster_kernel<T>(cluster), looked up once by the caller.
template <class T>
void squeeze_excite_cluster(cudaKernel_t k, const T* x, const T* w1, const float* b1, const T* w2,
                            const float* b2, T* y, int n, int cp, int hw, int k1, int k1p, int k2,
                            int k2p, ActDesc act1, ActDesc in_act2, ActDesc act2, int cluster,
                            cudaStream_t stream) {
  STRATA_CHECK((!std::is_same_v<T, float>), "squeeze_excite is for 16-bit storage");
  STRATA_CHECK(cp % 8 == 0 && k1p % 8 == 0 && cp <= squeeze_excite_max_channels &&
                   k1p <= squeeze_excite_max_squeezed && n >= 1 &&
                   static_cast<std::int64_t>(n) * cluster < (std::int64_t{1} << 31),
               "squeeze_excite (clusters): " << cp << " channel slots squeezed to " << k1p << ", "
                                             << n << " images");
  rtc::launch(k, static_cast<unsigned>(n) * static_cast<unsigned>(cluster),
              256, stream, x, w1, b1, w2, b2, y, n, cp, hw, k1, k1p, k2, k2p, act1, in_act2, act2);
}

/// An input (element type S: float, __half or std::uint8_t; strides `ss`, image (c, h, w)) →
/// 16-bit NHWC space-to-depth blocks (n, sh, sw, scp): channel (ci·2 + dy)·2 + dx of block (Y, X)
/// is input pixel (2Y + dy − pad_h, 2X + dx − pad_w) of channel ci, normalized by `affine` (may
/// be null; 0 outside the input; slots >= 4c are 0).
template <class S, class T>
void space_to_depth(const S* src, Strides ss, T* dst, int n, int c, int h, int w, int sh, int sw,
                    int scp, int pad_h, int pad_w, const float* affine, cudaStream_t stream) {
  const std::int64_t blocks = static_cast<std::int64_t>(n) * sh * sw;
  const bool small =
      detail::fits32(blocks * scp) && detail::fits32(static_cast<std::int64_t>(n) * c * h * w);
  detail::run<T>(detail::kernel_name("space_to_depth_kernel",
                                     {detail::rtc_type<S>(), detail::rtc_type<T>(),
                                      detail::index_type(small)}),
                 blocks, stream, src, ss, dst, n, c, h, w, sh, sw, scp, pad_h, pad_w, affine);
}

/// NHWC (n, h, w, cp) → (n, oh, ow, cp) taking pixel (oy·sh, ox·sw): the input of a strided 1×1
/// convolution run as a GEMM. cp must be a multiple of 8 (16-byte copies).
template <class T>
void subsample(const T* src, T* dst, int n, int h, int w, int cp, int oh, int ow, int sh, int sw,
               cudaStream_t stream) {
  const std::int64_t total = static_cast<std::int64_t>(n) * oh * ow * (cp / 8);
  const bool small = detail::fits32(static_cast<std::int64_t>(n) * h * w * cp);
  detail::run<T>(detail::kernel_name("subsample_kernel",
                                     {detail::rtc_type<T>(), detail::index_type(small)}),
                 total, stream, src, dst, n, h, w, cp, oh, ow, sh, sw);
}

/// The im2col matrix of a conv over NHWC (n, h, w, cp) input: (n·oh·ow) rows of kh·kw·cp, a tap's
/// cp slots at (r·kw + s)·cp, zeros in the padding — the B operand of the conv run as one GEMM
/// against its (K, kh, kw, C) filter rows. 16-bit storage; cp must be a multiple of 8 (16-byte
/// copies).
template <class T>
void im2col(const T* src, T* dst, int n, int h, int w, int cp, int oh, int ow, int kh, int kw,
            int sh, int sw, int ph, int pw, int dh, int dw, cudaStream_t stream) {
  static_assert(sizeof(T) == 2, "im2col: 16-bit storage");
  STRATA_CHECK(cp % 8 == 0, "im2col: " << cp << " channel slots, not a multiple of 8");
  const std::int64_t total = static_cast<std::int64_t>(n) * oh * ow * kh * kw * (cp / 8);
  const bool small = detail::fits32(std::max(static_cast<std::int64_t>(n) * h * w * cp, total * 8));
  detail::run<T>(detail::kernel_name("im2col_kernel", {detail::rtc_type<T>(), detail::index_type(small)}),
                 total, stream, src, dst, n, h, w, cp, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw);
}

/// The pointwise8 kernel over `pixels` pixels of cp (a multiple of 8) slots, NHWC: x and
/// y `xs`, `ys` elements from one pixel to the next (multiples of 8), z dense or null.
template <class T>
void pointwise8(const T* x, std::int64_t xs, const T* z, T* y, std::int64_t ys, const float* scale,
                const float* shift, ActDesc act, std::int64_t pixels, int cp, int c_real,
                cudaStream_t stream) {
  STRATA_CHECK(detail::aligned16(scale) && detail::aligned16(shift),
               "pointwise8: the per-channel scale and shift must be 16-byte aligned");
  const std::int64_t vectors = pixels * (cp / 8);
  const bool small = detail::fits32(pixels * std::max({xs, ys, static_cast<std::int64_t>(cp)}));
  const std::string k =
      detail::kernel_name("pointwise8_kernel", {detail::rtc_type<T>(), detail::index_type(small)});
  if (small) {
    detail::run<T>(k, vectors, stream, x, z, y, scale, shift, act, static_cast<int>(vectors), cp,
                   c_real, static_cast<int>(xs), static_cast<int>(ys));
  } else {
    detail::run<T>(k, vectors, stream, x, z, y, scale, shift, act,
                   static_cast<long long>(vectors), cp, c_real, static_cast<long long>(xs),
                   static_cast<long long>(ys));
  }
}

/// Copies/converts (N, C, HW) from src (strides ss) to dst (strides ds, dcp channel slots per
/// pixel; slots >= c are written as 0), normalizing by `affine` (2 floats per channel: x·a + b;
/// may be null). Either D is float and S the storage type (an output), or D is the storage type
/// and S float, __half or std::uint8_t (an input).
template <class S, class D>
void convert(const S* src, Strides ss, D* dst, Strides ds, int n, int c, int dcp, int hw,
             bool dst_nhwc, cudaStream_t stream, const float* affine = nullptr) {
  // The library it lives in: the storage type's.
  constexpr bool output = std::is_same_v<D, float> && !std::is_same_v<S, float> &&
                          !std::is_same_v<S, std::uint8_t>;
  using T = std::conditional_t<output, S, D>;
  const std::int64_t work = static_cast<std::int64_t>(n) * dcp * hw;
  const bool small = detail::fits32(work);
  if constexpr (!std::is_same_v<D, float> && !std::is_same_v<S, D>) {
    // An input to 16-bit NHWC: one thread per pixel, 16-byte stores.
    if (dst_nhwc && dcp % 8 == 0 && ds.channel == 1 && ds.pixel == dcp) {
      detail::run<T>(detail::kernel_name("to_nhwc8_kernel", {detail::rtc_type<S>(),
                                                             detail::rtc_type<D>(),
                                                             detail::index_type(small)}),
                     static_cast<std::int64_t>(n) * hw, stream, src, ss, dst, n, c, dcp, hw,
                     affine);
      return;
    }
  }
  if constexpr (std::is_same_v<S, D> && !std::is_same_v<S, float>) {
    // 16-bit NHWC to NHWC (a result into a concat's slice) with whole 16-byte groups: 8 slots
    // a thread (the scalar kernel below moves about a sixth of the bandwidth).
    if (dst_nhwc && affine == nullptr && dcp % 8 == 0 && ss.channel == 1 && ds.channel == 1 &&
        ss.pixel % 8 == 0 && ds.pixel % 8 == 0 && ss.pixel >= dcp && ss.image == ss.pixel * hw &&
        ds.image == ds.pixel * hw && detail::aligned16(src) && detail::aligned16(dst)) {
      pointwise8(src, ss.pixel, static_cast<const S*>(nullptr), dst, ds.pixel, nullptr, nullptr,
                 ActDesc{}, static_cast<std::int64_t>(n) * hw, dcp, c, stream);
      return;
    }
  }
  if constexpr (std::is_same_v<S, D>) {
    // Same type, same dense layout, no normalization: a copy.
    if (affine == nullptr && dcp == c && ss.image == ds.image && ss.pixel == ds.pixel &&
        ss.channel == ds.channel && ss.image == static_cast<std::int64_t>(c) * hw) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(work) * sizeof(S),
                                        cudaMemcpyDeviceToDevice, stream));
      return;
    }
  }
  detail::run<T>(detail::kernel_name("convert_kernel", {detail::rtc_type<S>(), detail::rtc_type<D>(),
                                                        detail::index_type(small)}),
                 work, stream, src, ss, dst, ds, n, c, dcp, hw, dst_nhwc, affine);
}

/// y = act(x·scale[ch] + shift[ch] + z) over `total` elements of a (N, ·) tensor; scale,
/// shift (f32, per channel slot) and z may be null; channel slots >= c_real are written as 0.
/// x and y may alias. x has dense strides unless `xs` says otherwise (a concat's channel slice:
/// NHWC, a pixel stride, a multiple of 8; NCHW, an image stride); z and y are dense.
template <class T>
void pointwise(const T* x, const T* z, T* y, const float* scale, const float* shift, ActDesc act,
               std::int64_t total, int cp, int hw, int c_real, bool nhwc, cudaStream_t stream,
               std::optional<Strides> xs = std::nullopt) {
  const std::int64_t per_image = static_cast<std::int64_t>(cp) * hw;
  const char* t = detail::rtc_type<T>();
  // NHWC (16-bit, and tf32's f32): 8 slots a thread, 16-byte accesses where aligned — and a
  // concat's slice, which the scalar kernel below reads with NCHW strides only.
  if (nhwc && cp % 8 == 0) {
    const std::int64_t x_pixel = xs ? xs->pixel : cp;
    STRATA_CHECK(!xs || (xs->channel == 1 && xs->pixel % 8 == 0 && xs->image == xs->pixel * hw),
                 "pointwise: an NHWC input slice needs 8-slot-aligned pixel strides");
    pointwise8(x, x_pixel, z, y, static_cast<std::int64_t>(cp), scale, shift, act, total / cp, cp,
               c_real, stream);
    return;
  }
  STRATA_CHECK(!xs || (!nhwc && xs->channel == hw && xs->pixel == 1),
               "pointwise: an input slice is read with NCHW image strides only");
  const std::int64_t x_image = xs ? xs->image : per_image;
  const bool small = detail::fits32(total / std::max<std::int64_t>(per_image, 1) * x_image);
  const std::string k = detail::kernel_name("pointwise_kernel", {t, detail::index_type(small)});
  if (small) {
    detail::run<T>(k, total, stream, x, z, y, scale, shift, act, static_cast<int>(total), cp, hw,
                   c_real, nhwc, static_cast<int>(x_image));
  } else {
    detail::run<T>(k, total, stream, x, z, y, scale, shift, act, static_cast<long long>(total), cp,
                   hw, c_real, nhwc, static_cast<long long>(x_image));
  }
}

/// Max or average pooling with PyTorch's window rules (padding, ceil_mode, count_include_pad).
template <class T>
void pool(const T* x, T* y, PoolShape s, bool nhwc, cudaStream_t stream) {
  const std::int64_t work = static_cast<std::int64_t>(s.n) * s.c * s.oh * s.ow;
  const std::int64_t in_elems = static_cast<std::int64_t>(s.n) * s.c * s.h * s.w;
  const char* i = detail::index_type(detail::fits32(std::max(work, in_elems)));
  const char* t = detail::rtc_type<T>();
  if (nhwc && s.c % 8 == 0 && !std::is_same_v<T, float>) {
    detail::run<T>(detail::kernel_name("pool8_kernel", {t, i}), work / 8, stream, x, y, s);
  } else {
    detail::run<T>(detail::kernel_name("pool_kernel", {t, i}), work, stream, x, y, s, nhwc);
  }
}

/// How many blocks global_avg_pool splits each (image, 32 channel slots) of an NHWC tensor
/// over: enough for about two blocks per SM in all, at least 64 pixels per block; 1 (no split,
/// no scratch) when the batch alone fills the GPU.
[[nodiscard]] inline int global_pool_splits(int n, int c, int hw, int sms) {
  const std::int64_t units = static_cast<std::int64_t>(n) * ((c + 31) / 32);
  const std::int64_t want = (2 * static_cast<std::int64_t>(sms) + units - 1) / units;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(want, hw / 64)));
}

/// Mean over H·W for each of n × c channel slots (f32 accumulation). NHWC with splits > 1:
/// `partial` holds splits × units × 32 floats and `counters` units zeroed unsigneds (units =
/// n · ⌈c/32⌉), left zeroed for the next launch (global_pool_splits). `in_act`: an activation
/// deferred into the pool's read (defer_activations), applied to each value and rounded to T
/// before it is summed.
template <class T>
void global_avg_pool(const T* x, T* y, int n, int c, int hw, bool nhwc, cudaStream_t stream,
                     int splits = 1, float* partial = nullptr, unsigned* counters = nullptr,
                     ActDesc in_act = ActDesc{}) {
  if (nhwc && splits == 1 && c % 8 == 0 && n >= 64) {
    // Images enough for a block each (below that, blocks of 32 channels spread them): ResNet-18's
    // at batch 256 (H200) took 17.7 µs in blocks of 32 channels.
    const std::string rows = detail::kernel_name("global_avg_pool_rows_kernel", {detail::rtc_type<T>()});
    rtc::launch(library<T>().kernel(rows), static_cast<unsigned>(std::min(n, 1 << 20)), 256, stream,
                x, y, n, c, hw, in_act);
    return;
  }
  const std::string k = detail::kernel_name("global_avg_pool_kernel", {detail::rtc_type<T>()});
  if (nhwc) {  // a block of 256 per (image, 32 channel slots, split)
    const std::int64_t units = static_cast<std::int64_t>(n) * ((c + 31) / 32);
    rtc::launch(library<T>().kernel(k),
                static_cast<unsigned>(std::min<std::int64_t>(units * splits, 1 << 20)), 256,
                stream, x, y, n, c, hw, nhwc, splits, partial, counters, in_act);
    return;
  }
  detail::run<T>(k, static_cast<std::int64_t>(n) * c * 32, stream, x, y, n, c, hw, nhwc, 1,
                 static_cast<float*>(nullptr), static_cast<unsigned*>(nullptr), in_act);
}

/// softmax / log_softmax over c channels for each of n·hw rows (f32, one warp per row);
/// output slots c..ocp-1 are written as 0. D is S or float.
template <class S, class D>
void softmax(const S* x, Strides xs, D* y, Strides ys, int n, int c, int ocp, int hw,
             bool log_softmax, cudaStream_t stream) {
  const std::int64_t rows = static_cast<std::int64_t>(n) * hw;
  detail::run<S>(detail::kernel_name("softmax_kernel", {detail::rtc_type<S>(), detail::rtc_type<D>()}),
                 rows * 32, stream, x, xs, y, ys, n, c, ocp, hw, log_softmax);
}

/// nn.Upsample (`upsample`: nearest or bilinear, integer factors) or nn.AdaptiveAvgPool2d((s.oh,
/// s.ow)) of a dense tensor (strides xs) into y (strides ys), `write` channel slots per pixel
/// (slots >= s.c written as 0).
template <class T>
void resize(bool upsample, const T* x, Strides xs, T* y, Strides ys, ResizeShape s, int write,
            bool nhwc, cudaStream_t stream) {
  const std::int64_t work = static_cast<std::int64_t>(s.n) * write * s.oh * s.ow;
  detail::run<T>(detail::kernel_name(upsample ? "upsample_kernel" : "adaptive_avg_pool_kernel",
                                     {detail::rtc_type<T>(), detail::index_type(detail::fits32(work))}),
                 work, stream, x, xs, y, ys, s, write, nhwc);
}

/// A channel gate: y = act(x · gate), the gate (n, c) broadcast over hw pixels; x has strides xs,
/// the gate `gate_image` elements per image, y strides ys, `write` slots written per pixel
/// (slots >= c as 0). `vec8`: 16-bit NHWC with x dense over cp slots, the gate cp per image,
/// y's pixel stride a multiple of 8, y 16-byte aligned and write == cp — 16-byte accesses.
template <class T>
void channel_gate(const T* x, Strides xs, const T* gate, std::int64_t gate_image, T* y,
                  Strides ys, int n, int c, int cp, int hw, int write, ActDesc act, bool nhwc,
                  bool vec8, cudaStream_t stream) {
  const char* t = detail::rtc_type<T>();
  if constexpr (!std::is_same_v<T, float>) {
    if (vec8) {
      const std::int64_t elems = static_cast<std::int64_t>(n) * hw * std::max<std::int64_t>(cp, ys.pixel);
      const std::int64_t work = static_cast<std::int64_t>(n) * hw * (cp / 8);
      detail::run<T>(detail::kernel_name("channel_gate8_kernel",
                                         {t, detail::index_type(detail::fits32(elems))}),
                     work, stream, x, static_cast<long long>(hw) * cp, gate, y,
                     static_cast<long long>(ys.pixel), n, c, cp, hw, act);
      return;
    }
  }
  const std::int64_t work = static_cast<std::int64_t>(n) * write * hw;
  detail::run<T>(detail::kernel_name("channel_gate_kernel",
                                     {t, detail::index_type(detail::fits32(work))}),
                 work, stream, x, xs, gate, static_cast<long long>(gate_image), y, ys, n, c, hw,
                 write, act, nhwc);
}

/// A 1×1 conv's weights scaled per image by a channel gate (a squeeze-excite block's, folded into
/// the conv: OpDesc::gate), 16-bit: y[img][k][ch] = w[k][ch] · gate[img][ch] for the `kp` rows of
/// `cp` slots (a multiple of 8) of w, `n` images, channels from `c` on written as 0; w, the gate
/// and y 16-byte aligned.
template <class T>
void gate_weights(const T* w, const T* gate, T* y, int n, int c, int cp, int kp,
                  cudaStream_t stream) {
  static_assert(!std::is_same_v<T, float>, "gate_weights: 16-bit storage");
  const std::int64_t elems = static_cast<std::int64_t>(n) * kp * cp;
  const std::int64_t work = static_cast<std::int64_t>(n) * kp * (cp / 8);
  detail::run<T>(detail::kernel_name("channel_gate8_kernel",
                                     {detail::rtc_type<T>(), detail::index_type(detail::fits32(elems))}),
                 work, stream, w, 0LL, gate, y, static_cast<long long>(cp), n, c, cp, kp, ActDesc{});
}

/// nn.ConvTranspose2d (folded batch_norm in w and bias) + activation, direct: x dense (strides
/// xs), weights (k, kh, kw, c/groups), bias f32 per output slot (or null), y strides ys, `write`
/// slots per pixel (slots >= s.k written as 0).
template <class T>
void conv_transpose(const T* x, Strides xs, const T* w, const float* bias, T* y, Strides ys,
                    ConvTShape s, int write, ActDesc act, bool nhwc, cudaStream_t stream) {
  const std::int64_t work = static_cast<std::int64_t>(s.n) * write * s.oh * s.ow;
  detail::run<T>(detail::kernel_name("conv_transpose_kernel", {detail::rtc_type<T>()}), work,
                 stream, x, xs, w, bias, y, ys, s, write, act, nhwc);
}

}  // namespace strata::cuda::kernels
