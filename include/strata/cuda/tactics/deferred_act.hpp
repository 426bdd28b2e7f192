#pragma once
/// The library way of running an op whose producer's activation was deferred into its read
/// (storage.hpp: defer_activations): that activation applied to the op's input in place — the
/// input's only reader is this op — then the op as a library runs it. Used by the tactics that
/// read deferred activations (depthwise_conv, pixel_conv1x1) where their own kernel would be
/// slower than the library.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

template <DType P>
class InPlaceThen final : public Step {
  using T = storage_t<P>;

 public:
  InPlaceThen(const OpDesc& op, int batch, const OpIo& io, std::unique_ptr<Step> then)
      : in_act_(op.in_act), x_(static_cast<T*>(const_cast<void*>(io.x))), then_(std::move(then)) {
    const Shape is = op.in_shape;
    total_ = static_cast<std::int64_t>(batch) * op.in_cp * is.h * is.w;
    cp_ = op.in_cp;
    hw_ = is.h * is.w;
    c_ = is.c;
  }
  [[nodiscard]] std::size_t workspace_bytes() const override { return then_->workspace_bytes(); }
  void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) override {
    if (in_act_.kind != Act::none) {
      kernels::pointwise<T>(x_, nullptr, x_, nullptr, nullptr, in_act_, total_, cp_, hw_, c_,
                            storage_layout(P) == Layout::nhwc, s);
    }
    then_->launch(s, ws, ws_bytes);
  }
  [[nodiscard]] std::string describe() const override {
    return (in_act_.kind != Act::none
                ? std::string("strata pointwise (the producer's activation, in place), then ")
                : std::string()) +
           then_->describe();
  }
  [[nodiscard]] bool fell_back() const override { return then_->fell_back(); }
  [[nodiscard]] bool library_fused() const override { return then_->library_fused(); }

 private:
  ActDesc in_act_;
  T* x_;
  std::unique_ptr<Step> then_;
  std::int64_t total_ = 0;
  int cp_ = 0, hw_ = 0, c_ = 0;
};

}  // namespace strata::cuda::tactics
