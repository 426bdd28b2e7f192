#pragma once
/// strata::cuda::EnginePool<Net, P>: data-parallel inference over several GPUs of one machine.
/// One Engine per device — weights uploaded to each, tactics chosen on each (shared through
/// EngineOptions::tuning_cache when the GPUs are alike: the cache's keys carry the device's
/// name, so a second GPU of the same kind reads the first one's choices instead of timing) — and
/// a batch split into contiguous shares (split_batch) that run concurrently, one host thread per
/// device; or a stream of batches handed to the engines in turn (enqueue).
///
/// Every call into an engine is made with that engine's device current (cudaSetDevice is a
/// per-thread setting); the pool restores the caller's device before returning. Like an Engine,
/// a pool is used by one thread at a time.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/cuda/batch_split.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/engine.hpp"

namespace strata::cuda {

/// Makes `device` current for the guard's lifetime, then restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    STRATA_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device_) {
      STRATA_CUDA_CHECK(cudaSetDevice(device_));
    }
  }
  ~DeviceGuard() {
    if (previous_ != device_) {
      (void)cudaSetDevice(previous_);
    }
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int device_ = 0;
  int previous_ = 0;
};

template <class Net, DType P>
  requires Network<Net>
class EnginePool {
 public:
  using EngineType = Engine<Net, P>;
  static constexpr std::int64_t input_numel = EngineType::input_numel;
  static constexpr std::int64_t output_numel = EngineType::output_numel;

  /// One engine on each of `devices` (empty: every visible GPU), built in turn with `options`
  /// (options.max_batch is per engine).
  EnginePool(const Weights<Net>& weights, const EngineOptions& options, std::vector<int> devices = {})
      : max_batch_(options.max_batch) {
    int count = 0;
    STRATA_CUDA_CHECK(cudaGetDeviceCount(&count));
    STRATA_CHECK(count > 0, "cuda::EnginePool: no CUDA device");
    if (devices.empty()) {
      for (int d = 0; d < count; ++d) {
        devices.push_back(d);
      }
    }
    try {
      for (int d : devices) {
        STRATA_CHECK(d >= 0 && d < count, "cuda::EnginePool: device " << d << " does not exist ("
                                                                      << count << " visible)");
        const DeviceGuard guard(d);
        engines_.push_back({d, std::make_unique<EngineType>(weights, options)});
      }
    } catch (...) {
      release();  // the engines built so far, each with its own device current
      throw;
    }
  }
  EnginePool(EnginePool&&) noexcept = default;
  EnginePool& operator=(EnginePool&&) = delete;
  EnginePool(const EnginePool&) = delete;
  EnginePool& operator=(const EnginePool&) = delete;
  /// Each engine is destroyed with its own device current.
  ~EnginePool() { release(); }

  [[nodiscard]] int size() const { return static_cast<int>(engines_.size()); }
  /// The largest batch infer() takes: every engine's maximum together.
  [[nodiscard]] int max_batch() const {
    const std::int64_t m = static_cast<std::int64_t>(size()) * max_batch_;
    STRATA_CHECK(m <= std::numeric_limits<int>::max(),
                 "cuda::EnginePool: " << size() << " engines of max_batch " << max_batch_
                                      << " exceed an int batch");
    return static_cast<int>(m);
  }
  [[nodiscard]] int device(int i) const { return engines_.at(static_cast<std::size_t>(i)).device; }
  /// Engine `i` (make device(i) current before calling it: DeviceGuard).
  [[nodiscard]] EngineType& engine(int i) { return *engines_.at(static_cast<std::size_t>(i)).engine; }

  /// Host in, host out: `batch` images split into contiguous shares (split_batch), each run by
  /// its engine's infer() on a thread of its own with its device current; returns when every
  /// share's output is in `out`. The first failure is rethrown after all shares have finished.
  template <InputRange R>
  void infer(const R& input, std::span<float> out, int batch) {
    const auto in = as_span(input);
    const std::vector<BatchShare> shares = split_batch(batch, size(), max_batch_);
    STRATA_CHECK(in.size() >= static_cast<std::size_t>(batch * input_numel),
                 "cuda::EnginePool::infer: the input holds " << in.size() << " values, batch "
                                                             << batch << " needs "
                                                             << batch * input_numel);
    STRATA_CHECK(out.size() >= static_cast<std::size_t>(batch * output_numel),
                 "cuda::EnginePool::infer: the output holds " << out.size() << " floats, batch "
                                                              << batch << " needs "
                                                              << batch * output_numel);
    auto run = [&](std::size_t i) {
      const BatchShare s = shares[i];
      const DeviceGuard guard(engines_[i].device);
      engines_[i].engine->infer(
          in.subspan(static_cast<std::size_t>(s.first * input_numel),
                     static_cast<std::size_t>(s.count * input_numel)),
          out.subspan(static_cast<std::size_t>(s.first * output_numel),
                      static_cast<std::size_t>(s.count * output_numel)),
          s.count);
    };
    if (shares.size() == 1) {
      run(0);
      return;
    }
    std::vector<std::exception_ptr> errors(shares.size());
    std::vector<std::thread> threads;
    threads.reserve(shares.size());
    auto join_all = [&threads] {
      for (std::thread& t : threads) {
        t.join();
      }
    };
    try {
      for (std::size_t i = 0; i < shares.size(); ++i) {
        threads.emplace_back([&, i] {
          try {
            run(i);
          } catch (...) {
            errors[i] = std::current_exception();
          }
        });
      }
    } catch (...) {  // a thread that could not start: the started ones finish first
      join_all();
      throw;
    }
    join_all();
    for (const std::exception_ptr& e : errors) {
      if (e) {
        std::rethrow_exception(e);
      }
    }
  }

  /// A stream of batches: each call hands its batch (page-locked memory, as Engine::enqueue) to
  /// the next engine in turn and returns at once.
  template <InputRange R>
  [[nodiscard]] Pending enqueue(const R& input, std::span<float> out, int batch) {
    STRATA_CHECK(!engines_.empty(), "cuda::EnginePool::enqueue: the pool is empty (moved from)");
    Member& m = engines_[next_];
    const DeviceGuard guard(m.device);
    Pending p = m.engine->enqueue(input, out, batch);
    next_ = (next_ + 1) % engines_.size();  // a refused batch does not use up a turn
    return p;
  }

  /// Waits for every engine's enqueued work.
  void synchronize() {
    for (Member& m : engines_) {
      const DeviceGuard guard(m.device);
      m.engine->synchronize();
    }
  }

 private:
  struct Member {
    int device = 0;
    std::unique_ptr<EngineType> engine;
  };
  /// Destroys every engine with its device current (an engine whose device cannot be made
  /// current is left to leak rather than freed on another device).
  void release() noexcept {
    int previous = 0;
    const bool restore = cudaGetDevice(&previous) == cudaSuccess;
    for (Member& m : engines_) {
      if (m.engine) {
        if (cudaSetDevice(m.device) == cudaSuccess) {
          m.engine.reset();
        } else {
          (void)m.engine.release();
        }
      }
    }
    if (restore) {
      (void)cudaSetDevice(previous);
    }
  }

  int max_batch_ = 1;
  std::size_t next_ = 0;
  std::vector<Member> engines_;
};

}  // namespace strata::cuda
