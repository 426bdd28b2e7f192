#pragma once
/// RAII owners of CUDA runtime resources: device and pinned host buffers, streams, events,
/// graphs and executable graphs. Move-only, single ownership; destructors check for null and
/// never throw (a failing release is ignored: there is nobody to tell).
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "strata/cuda/check.hpp"

namespace strata::cuda {

/// A move-only owner of a handle `H`, released by `Release` (a stateless function object).
template <class H, class Release>
class Unique {
 public:
  Unique() = default;
  explicit Unique(H h) : h_(h) {}
  Unique(Unique&& o) noexcept : h_(std::exchange(o.h_, H{})) {}
  Unique& operator=(Unique&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, H{});
    }
    return *this;
  }
  Unique(const Unique&) = delete;             // copies would double-free
  Unique& operator=(const Unique&) = delete;  // and hide performance accidents
  ~Unique() { reset(); }

  [[nodiscard]] H get() const { return h_; }
  [[nodiscard]] explicit operator bool() const { return h_ != H{}; }
  void reset() noexcept {
    if (h_ != H{}) {
      Release{}(h_);
      h_ = H{};
    }
  }

 private:
  H h_{};
};

namespace detail {
struct FreeDevice { void operator()(void* p) const noexcept { (void)cudaFree(p); } };
struct FreeHost { void operator()(void* p) const noexcept { (void)cudaFreeHost(p); } };
struct DestroyStream { void operator()(cudaStream_t s) const noexcept { (void)cudaStreamDestroy(s); } };
struct DestroyEvent { void operator()(cudaEvent_t e) const noexcept { (void)cudaEventDestroy(e); } };
struct DestroyGraph { void operator()(cudaGraph_t g) const noexcept { (void)cudaGraphDestroy(g); } };
struct DestroyGraphExec {
  void operator()(cudaGraphExec_t g) const noexcept { (void)cudaGraphExecDestroy(g); }
};
}  // namespace detail

/// `bytes` of device memory (cudaMalloc). Empty when bytes == 0.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
      void* p = nullptr;
      STRATA_CUDA_CHECK(cudaMalloc(&p, bytes));
      p_ = Unique<void*, detail::FreeDevice>(p);
    }
  }
  [[nodiscard]] void* get() const { return p_.get(); }
  template <class T>
  [[nodiscard]] T* as() const { return static_cast<T*>(p_.get()); }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  Unique<void*, detail::FreeDevice> p_;
  std::size_t bytes_ = 0;
};

/// `bytes` of device memory set to zero before it returns (at build time: counters that kernels
/// reset themselves). Finished here, on the legacy stream: the engine's streams do not wait for it.
[[nodiscard]] inline DeviceBuffer zeroed_device_buffer(std::size_t bytes) {
  DeviceBuffer b(bytes);
  if (bytes > 0) {
    STRATA_CUDA_CHECK(cudaMemsetAsync(b.get(), 0, bytes, nullptr));
    STRATA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }
  return b;
}

/// `bytes` of page-locked host memory (cudaMallocHost), for asynchronous copies.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
      void* p = nullptr;
      STRATA_CUDA_CHECK(cudaMallocHost(&p, bytes));
      p_ = Unique<void*, detail::FreeHost>(p);
    }
  }
  [[nodiscard]] void* get() const { return p_.get(); }
  template <class T>
  [[nodiscard]] T* as() const { return static_cast<T*>(p_.get()); }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  Unique<void*, detail::FreeHost> p_;
  std::size_t bytes_ = 0;
};

/// A non-blocking CUDA stream.
class Stream {
 public:
  [[nodiscard]] static Stream create() {
    cudaStream_t s = nullptr;
    STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return Stream(s);
  }
  Stream() = default;
  [[nodiscard]] cudaStream_t get() const { return s_.get(); }
  void synchronize() const { STRATA_CUDA_CHECK(cudaStreamSynchronize(s_.get())); }

 private:
  explicit Stream(cudaStream_t s) : s_(s) {}
  Unique<cudaStream_t, detail::DestroyStream> s_;
};

/// A CUDA event: timing enabled, or (timing = false) for ordering streams only, which is cheaper.
class Event {
 public:
  [[nodiscard]] static Event create(bool timing = true) {
    cudaEvent_t e = nullptr;
    STRATA_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
    return Event(e);
  }
  Event() = default;
  [[nodiscard]] cudaEvent_t get() const { return e_.get(); }
  void record(cudaStream_t s) const { STRATA_CUDA_CHECK(cudaEventRecord(e_.get(), s)); }
  void synchronize() const { STRATA_CUDA_CHECK(cudaEventSynchronize(e_.get())); }
  /// Milliseconds from `start` to this event (both recorded and complete).
  [[nodiscard]] float elapsed_ms_since(const Event& start) const {
    float ms = 0.0f;
    STRATA_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), e_.get()));
    return ms;
  }

 private:
  explicit Event(cudaEvent_t e) : e_(e) {}
  Unique<cudaEvent_t, detail::DestroyEvent> e_;
};

/// A captured CUDA graph (the template an executable graph is made from).
class Graph {
 public:
  Graph() = default;
  explicit Graph(cudaGraph_t g) : g_(g) {}
  [[nodiscard]] cudaGraph_t get() const { return g_.get(); }

 private:
  Unique<cudaGraph_t, detail::DestroyGraph> g_;
};

/// An executable (instantiated) CUDA graph.
class GraphExec {
 public:
  GraphExec() = default;
  [[nodiscard]] static GraphExec instantiate(const Graph& g) {
    cudaGraphExec_t e = nullptr;
    STRATA_CUDA_CHECK(cudaGraphInstantiate(&e, g.get(), 0));
    return GraphExec(e);
  }
  [[nodiscard]] cudaGraphExec_t get() const { return e_.get(); }
  [[nodiscard]] explicit operator bool() const { return static_cast<bool>(e_); }
  void launch(cudaStream_t s) const { STRATA_CUDA_CHECK(cudaGraphLaunch(e_.get(), s)); }

 private:
  explicit GraphExec(cudaGraphExec_t e) : e_(e) {}
  Unique<cudaGraphExec_t, detail::DestroyGraphExec> e_;
};

}  // namespace strata::cuda
