#pragma once
/// RAII owners of cuBLASLt objects: the handle, a matmul descriptor, matrix layouts and a
/// heuristic preference. Creating one only acquires it; `set*` configures it.
#include <cublasLt.h>

#include <cstdint>

#include "strata/core/dtype.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/resources.hpp"

namespace strata::cuda {

namespace detail {
struct DestroyLt { void operator()(cublasLtHandle_t h) const noexcept { (void)cublasLtDestroy(h); } };
struct DestroyMatmulDesc {
  void operator()(cublasLtMatmulDesc_t d) const noexcept { (void)cublasLtMatmulDescDestroy(d); }
};
struct DestroyLayout {
  void operator()(cublasLtMatrixLayout_t d) const noexcept { (void)cublasLtMatrixLayoutDestroy(d); }
};
struct DestroyPreference {
  void operator()(cublasLtMatmulPreference_t d) const noexcept {
    (void)cublasLtMatmulPreferenceDestroy(d);
  }
};
}  // namespace detail

/// cuBLAS's element type for a Strata DType.
[[nodiscard]] inline cudaDataType_t cublas_type(DType d) {
  switch (d) {
    case DType::f32:
    case DType::tf32: return CUDA_R_32F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

/// A cuBLASLt handle.
class LtHandle {
 public:
  [[nodiscard]] static LtHandle create() {
    cublasLtHandle_t h = nullptr;
    STRATA_CUBLAS_CHECK(cublasLtCreate(&h));
    return LtHandle(h);
  }
  LtHandle() = default;
  [[nodiscard]] cublasLtHandle_t get() const { return h_.get(); }

 private:
  explicit LtHandle(cublasLtHandle_t h) : h_(h) {}
  Unique<cublasLtHandle_t, detail::DestroyLt> h_;
};

/// A matmul descriptor: compute type f32 (TF32 tensor cores for f32 data only when `tf32`),
/// scale type f32.
class MatmulDesc {
 public:
  [[nodiscard]] static MatmulDesc create(bool tf32 = false) {
    cublasLtMatmulDesc_t d = nullptr;
    STRATA_CUBLAS_CHECK(cublasLtMatmulDescCreate(
        &d, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    return MatmulDesc(d);
  }
  MatmulDesc() = default;
  [[nodiscard]] cublasLtMatmulDesc_t get() const { return d_.get(); }
  template <class T>
  void set(cublasLtMatmulDescAttributes_t attr, const T& value) const {
    STRATA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d_.get(), attr, &value, sizeof(T)));
  }

 private:
  explicit MatmulDesc(cublasLtMatmulDesc_t d) : d_(d) {}
  Unique<cublasLtMatmulDesc_t, detail::DestroyMatmulDesc> d_;
};

/// A column-major matrix layout: rows × cols, leading dimension ld (elements).
class MatrixLayout {
 public:
  [[nodiscard]] static MatrixLayout create(DType t, std::uint64_t rows, std::uint64_t cols,
                                           std::int64_t ld) {
    cublasLtMatrixLayout_t d = nullptr;
    STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d, cublas_type(t), rows, cols, ld));
    return MatrixLayout(d);
  }
  MatrixLayout() = default;
  [[nodiscard]] cublasLtMatrixLayout_t get() const { return d_.get(); }
  /// `count` matrices, each `stride` elements after the one before (0: the same matrix each time).
  void set_batch(int count, std::int64_t stride) const {
    STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(d_.get(), CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                         &count, sizeof(count)));
    STRATA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        d_.get(), CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }

 private:
  explicit MatrixLayout(cublasLtMatrixLayout_t d) : d_(d) {}
  Unique<cublasLtMatrixLayout_t, detail::DestroyLayout> d_;
};

/// A heuristic preference (the workspace limit).
class MatmulPreference {
 public:
  [[nodiscard]] static MatmulPreference create() {
    cublasLtMatmulPreference_t d = nullptr;
    STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d));
    return MatmulPreference(d);
  }
  MatmulPreference() = default;
  [[nodiscard]] cublasLtMatmulPreference_t get() const { return d_.get(); }
  void set_max_workspace(std::uint64_t bytes) const {
    STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d_.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof(bytes)));
  }

 private:
  explicit MatmulPreference(cublasLtMatmulPreference_t d) : d_(d) {}
  Unique<cublasLtMatmulPreference_t, detail::DestroyPreference> d_;
};

}  // namespace strata::cuda
