#pragma once
/// RAII owner of a cuDNN backend ("graph API") descriptor, and the few typed setters and getters
/// Strata's graph tactic needs (tactics/cudnn_graph_conv.hpp). Creating one only acquires it;
/// attributes are set one call at a time, each checked, and `finalize` (or `try_finalize`, for a
/// descriptor cuDNN may decline, such as an execution plan) completes it.
#include <cudnn.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/resources.hpp"

namespace strata::cuda {

namespace detail {
struct DestroyBackendDesc {
  void operator()(cudnnBackendDescriptor_t d) const noexcept {
    (void)cudnnBackendDestroyDescriptor(d);
  }
};
}  // namespace detail

class BackendDesc {
 public:
  [[nodiscard]] static BackendDesc create(cudnnBackendDescriptorType_t type) {
    cudnnBackendDescriptor_t d = nullptr;
    STRATA_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d));
    return BackendDesc(d);
  }
  BackendDesc() = default;
  [[nodiscard]] cudnnBackendDescriptor_t get() const { return d_.get(); }

  /// `count` elements of attribute type `type` from `values`.
  BackendDesc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                   std::int64_t count, const void* values) {
    STRATA_CUDNN_CHECK(cudnnBackendSetAttribute(d_.get(), name, type, count, values));
    return *this;
  }
  BackendDesc& set_ints(cudnnBackendAttributeName_t name, std::initializer_list<std::int64_t> v) {
    const std::vector<std::int64_t> values(v);
    return set(name, CUDNN_TYPE_INT64, static_cast<std::int64_t>(values.size()), values.data());
  }
  BackendDesc& set_int(cudnnBackendAttributeName_t name, std::int64_t v) {
    return set(name, CUDNN_TYPE_INT64, 1, &v);
  }
  BackendDesc& set_bool(cudnnBackendAttributeName_t name, bool v) {
    return set(name, CUDNN_TYPE_BOOLEAN, 1, &v);
  }
  BackendDesc& set_type(cudnnBackendAttributeName_t name, cudnnDataType_t v) {
    return set(name, CUDNN_TYPE_DATA_TYPE, 1, &v);
  }
  BackendDesc& set_desc(cudnnBackendAttributeName_t name, const BackendDesc& v) {
    const cudnnBackendDescriptor_t d = v.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  BackendDesc& set_handle(cudnnBackendAttributeName_t name, cudnnHandle_t h) {
    return set(name, CUDNN_TYPE_HANDLE, 1, &h);
  }

  BackendDesc& finalize() {
    STRATA_CUDNN_CHECK(cudnnBackendFinalize(d_.get()));
    return *this;
  }
  /// Finalizes, returning cuDNN's status instead of throwing (an engine configuration cuDNN
  /// cannot build a plan for on this GPU is a candidate to skip, not an error).
  [[nodiscard]] cudnnStatus_t try_finalize() { return cudnnBackendFinalize(d_.get()); }

  /// One INT64 attribute.
  [[nodiscard]] std::int64_t get_int(cudnnBackendAttributeName_t name) const {
    std::int64_t v = 0;
    std::int64_t n = 0;
    STRATA_CUDNN_CHECK(cudnnBackendGetAttribute(d_.get(), name, CUDNN_TYPE_INT64, 1, &n, &v));
    return v;
  }

 private:
  explicit BackendDesc(cudnnBackendDescriptor_t d) : d_(d) {}
  Unique<cudnnBackendDescriptor_t, detail::DestroyBackendDesc> d_;
};

}  // namespace strata::cuda
