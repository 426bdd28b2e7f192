#pragma once
/// A compiled program loaded on the GPU with the CUDA runtime's context-independent library
/// API (cudaLibraryLoadData, CUDA 12+), its kernels looked up by the name expressions they were
/// compiled for, and launched with cudaLaunchKernel.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/rtc/compiler.hpp"

namespace strata::cuda::rtc {

/// How a library was made ready, for reports: compiled or read from the disk cache, then loaded.
struct BuildInfo {
  double compile_ms = 0.0;  ///< NVRTC, or reading the cache file
  double load_ms = 0.0;     ///< cudaLibraryLoadData and the kernel look-ups
  bool from_disk = false;
  std::string file;         ///< the cache file
};

/// A loaded program. Move-only; unloaded on destruction.
class Library {
 public:
  /// Loads `c` (compiled for the instantiations `names`) on the GPU.
  Library(const Compiled& c, const std::vector<std::string>& names) {
    const auto start = std::chrono::steady_clock::now();
    info_.compile_ms = c.ms;  // (the file name first: nothing is loaded yet if it throws)
    info_.from_disk = c.from_disk;
    info_.file = c.file.string();
    libs_.reserve(1);  // (nor can the push throw once the library is loaded)
    libs_.push_back(add(c, names));
    info_.load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  /// Loads every part of `c` (compile_parts) as one library of kernels.
  explicit Library(const CompiledParts& c) {
    const auto start = std::chrono::steady_clock::now();
    info_.compile_ms = c.ms;  // (the file name first: nothing is loaded yet if it throws)
    info_.from_disk = c.from_disk;
    info_.file = c.parts.empty() ? std::string() : c.parts.front().file.string();
    libs_.reserve(c.parts.size());  // (nor can a push throw once its part is loaded)
    try {
      for (std::size_t p = 0; p < c.parts.size(); ++p) {
        libs_.push_back(add(c.parts[p], c.names[p]));
      }
    } catch (...) {  // the destructor does not run for a constructor that throws
      unload();
      throw;
    }
    info_.load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  Library(Library&& o) noexcept
      : libs_(std::exchange(o.libs_, {})), kernels_(std::move(o.kernels_)),
        info_(std::move(o.info_)) {}
  Library& operator=(Library&&) = delete;
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  ~Library() { unload(); }

  /// The kernel compiled for name expression `name`; throws if there is none.
  [[nodiscard]] cudaKernel_t kernel(const std::string& name) const {
    const auto it = kernels_.find(name);
    STRATA_CHECK(it != kernels_.end(), "strata: no run-time compiled kernel '" << name << "'");
    return it->second;
  }
  [[nodiscard]] const BuildInfo& info() const { return info_; }

 private:
  /// Loads `c` and records its kernels under `names` (unloaded again if a kernel is missing).
  cudaLibrary_t add(const Compiled& c, const std::vector<std::string>& names) {
    cudaLibrary_t lib = nullptr;
    STRATA_CUDA_CHECK(cudaLibraryLoadData(&lib, c.cubin.data(), nullptr, nullptr, 0, nullptr,
                                          nullptr, 0));
    try {
      for (std::size_t i = 0; i < names.size(); ++i) {
        cudaKernel_t k = nullptr;
        STRATA_CUDA_CHECK(cudaLibraryGetKernel(&k, lib, c.lowered[i].c_str()));
        kernels_.emplace(names[i], k);
      }
    } catch (...) {
      (void)cudaLibraryUnload(lib);
      throw;
    }
    return lib;
  }
  void unload() noexcept {
    for (cudaLibrary_t l : libs_) {
      (void)cudaLibraryUnload(l);
    }
    libs_.clear();
  }

  std::vector<cudaLibrary_t> libs_;  ///< one, or each part of a library compiled in parts
  std::map<std::string, cudaKernel_t, std::less<>> kernels_;
  BuildInfo info_;
};

/// Whether this thread's launches are programmatic dependent launches (PdlScope).
inline thread_local bool pdl_launches = false;

/// Within its lifetime, launches on this thread are programmatic dependent launches (Hopper's
/// PDL, compute capability 9.0 on): each kernel may start once every block of the kernel before
/// it on the stream has started (all of Strata's kernels signal that first thing, in
/// `pdl_entry` or `pdl_launch`) and waits, before it touches memory an earlier kernel writes,
/// until that kernel has finished and its writes are visible (`pdl_entry`; kernels with weights
/// to copy first — the split-K conv's filter steps, among others — then `pdl_wait`) — so a kernel's launch overlaps its
/// predecessor's last wave instead of following its end. Nested scopes restore the previous
/// setting.
class PdlScope {
 public:
  explicit PdlScope(bool on) : prev_(pdl_launches) { pdl_launches = on; }
  ~PdlScope() { pdl_launches = prev_; }
  PdlScope(const PdlScope&) = delete;
  PdlScope& operator=(const PdlScope&) = delete;

 private:
  bool prev_;
};

/// Launches `k` with `grid` × `block` threads and `shared` bytes of dynamic shared memory per
/// block (over 48 KiB only for a kernel that opted in with cudaFuncAttributeMaxDynamicSharedMemorySize)
/// on `s`; `args` must match the kernel's parameters in type and order
/// (pointers, int, long long, bool, and structs of the same layout). Within a PdlScope, a
/// programmatic dependent launch.
template <class... Args>
void launch_shared(cudaKernel_t k, unsigned grid, unsigned block, std::size_t shared,
                   cudaStream_t s, Args... args) {
  void* params[] = {static_cast<void*>(&args)..., nullptr};
  if (pdl_launches) {
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(grid);
    config.blockDim = dim3(block);
    config.dynamicSmemBytes = shared;
    config.stream = s;
    cudaLaunchAttribute attr[1]{};
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attr;
    config.numAttrs = 1;
    STRATA_CUDA_CHECK(cudaLaunchKernelExC(&config, reinterpret_cast<const void*>(k), params));
    return;
  }
  STRATA_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k), dim3(grid), dim3(block),
                                     params, shared, s));
}

/// launch_shared without dynamic shared memory.
template <class... Args>
void launch(cudaKernel_t k, unsigned grid, unsigned block, cudaStream_t s, Args... args) {
  launch_shared(k, grid, block, 0, s, args...);
}

/// The compute capability of the current device as one number (90 for sm_90).
[[nodiscard]] inline int current_arch() {
  int device = 0;
  int major = 0;
  int minor = 0;
  STRATA_CUDA_CHECK(cudaGetDevice(&device));
  STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

}  // namespace strata::cuda::rtc
