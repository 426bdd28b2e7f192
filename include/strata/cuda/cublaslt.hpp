#pragma once
/// RAII owners of cuBLASLt objects: the handle, a matmul descriptor, matrix layouts and a
/// heuristic preference. Creating one only acquires it; `set*` configures it.
#include <cublasLt.h>

#include <cstdint>
#include <utility>

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

/// The largest power of two up to 256 that divides the address `p` (256 for null).
[[nodiscard]] inline std::uint32_t pointer_alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t r = 256;
  while (r > 1 && a % r != 0) {
    r /= 2;
  }
  return r;
}

/// A heuristic preference (the workspace limit, the operands' alignments).
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
  /// The alignments (bytes) of the A, B, C and D pointers the matmul will be given: algorithms
  /// that need more are not offered (unset, cuBLASLt assumes 256).
  void set_alignments(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) const {
    const std::pair<cublasLtMatmulPreferenceAttributes_t, std::uint32_t> all[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, c},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, d}};
    for (const auto& [attr, bytes] : all) {
      STRATA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d_.get(), attr, &bytes, sizeof(bytes)));
    }
  }

 private:
  explicit MatmulPreference(cublasLtMatmulPreference_t d) : d_(d) {}
  Unique<cublasLtMatmulPreference_t, detail::DestroyPreference> d_;
};

}  // namespace strata::cuda
