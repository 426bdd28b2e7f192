#pragma once
/// RAII owners of cuDNN objects: the handle and the tensor, filter, convolution and activation
/// descriptors. Creating one only acquires it; `set*` configures it (so a failure cannot leak).
#include <cudnn.h>

#include "strata/core/dtype.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/resources.hpp"

namespace strata::cuda {

namespace detail {
struct DestroyCudnn { void operator()(cudnnHandle_t h) const noexcept { (void)cudnnDestroy(h); } };
struct DestroyTensorDesc {
  void operator()(cudnnTensorDescriptor_t d) const noexcept { (void)cudnnDestroyTensorDescriptor(d); }
};
struct DestroyFilterDesc {
  void operator()(cudnnFilterDescriptor_t d) const noexcept { (void)cudnnDestroyFilterDescriptor(d); }
};
struct DestroyConvDesc {
  void operator()(cudnnConvolutionDescriptor_t d) const noexcept {
    (void)cudnnDestroyConvolutionDescriptor(d);
  }
};
struct DestroyActDesc {
  void operator()(cudnnActivationDescriptor_t d) const noexcept {
    (void)cudnnDestroyActivationDescriptor(d);
  }
};
}  // namespace detail

/// cuDNN's element type for a Strata DType.
[[nodiscard]] inline cudnnDataType_t cudnn_type(DType d) {
  switch (d) {
    case DType::f32:
    case DType::tf32: return CUDNN_DATA_FLOAT;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
  }
  return CUDNN_DATA_FLOAT;
}

/// Whether cuDNN math type `m` may run a convolution of precision `p`: any in 16-bit; in f32
/// only real f32 (FMA or default math, no TF32 tensor-op math) unless TF32 is allowed
/// (EngineOptions::allow_tf32; always in a tf32 engine).
[[nodiscard]] inline bool cudnn_math_ok(DType p, cudnnMathType_t m, bool tf32) {
  return is_16bit(p) || tf32 || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
}

/// The math type to run with for a chosen one (a variant's, cuDNN's list's): FMA in f32 without
/// TF32, else the chosen.
[[nodiscard]] inline cudnnMathType_t cudnn_math_for(DType p, int chosen, bool tf32) {
  return !is_16bit(p) && !tf32 ? CUDNN_FMA_MATH : static_cast<cudnnMathType_t>(chosen);
}

/// A cuDNN handle (one per thread of work: handles are not shared between threads).
class CudnnHandle {
 public:
  [[nodiscard]] static CudnnHandle create() {
    cudnnHandle_t h = nullptr;
    STRATA_CUDNN_CHECK(cudnnCreate(&h));
    return CudnnHandle(h);
  }
  CudnnHandle() = default;
  [[nodiscard]] cudnnHandle_t get() const { return h_.get(); }
  void set_stream(cudaStream_t s) const { STRATA_CUDNN_CHECK(cudnnSetStream(h_.get(), s)); }

 private:
  explicit CudnnHandle(cudnnHandle_t h) : h_(h) {}
  Unique<cudnnHandle_t, detail::DestroyCudnn> h_;
};

/// A 4-D tensor descriptor (N, C, H, W) with explicit strides in elements.
class TensorDesc {
 public:
  [[nodiscard]] static TensorDesc create() {
    cudnnTensorDescriptor_t d = nullptr;
    STRATA_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    return TensorDesc(d);
  }
  TensorDesc() = default;
  [[nodiscard]] cudnnTensorDescriptor_t get() const { return d_.get(); }
  void set(DType t, int n, int c, int h, int w, int sn, int sc, int sh, int sw) const {
    STRATA_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d_.get(), cudnn_type(t), n, c, h, w, sn, sc, sh, sw));
  }

 private:
  explicit TensorDesc(cudnnTensorDescriptor_t d) : d_(d) {}
  Unique<cudnnTensorDescriptor_t, detail::DestroyTensorDesc> d_;
};

/// A filter descriptor (K, C/groups, kh, kw) in NCHW (f32) or NHWC (16-bit) order.
class FilterDesc {
 public:
  [[nodiscard]] static FilterDesc create() {
    cudnnFilterDescriptor_t d = nullptr;
    STRATA_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    return FilterDesc(d);
  }
  FilterDesc() = default;
  [[nodiscard]] cudnnFilterDescriptor_t get() const { return d_.get(); }
  void set(DType t, cudnnTensorFormat_t format, int k, int c, int h, int w) const {
    STRATA_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d_.get(), cudnn_type(t), format, k, c, h, w));
  }

 private:
  explicit FilterDesc(cudnnFilterDescriptor_t d) : d_(d) {}
  Unique<cudnnFilterDescriptor_t, detail::DestroyFilterDesc> d_;
};

/// A convolution descriptor (cross-correlation, as PyTorch), f32 accumulation.
class ConvDesc {
 public:
  [[nodiscard]] static ConvDesc create() {
    cudnnConvolutionDescriptor_t d = nullptr;
    STRATA_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    return ConvDesc(d);
  }
  ConvDesc() = default;
  [[nodiscard]] cudnnConvolutionDescriptor_t get() const { return d_.get(); }
  void set(int pad_h, int pad_w, int stride_h, int stride_w, int dil_h, int dil_w, int groups,
           cudnnMathType_t math) const {
    STRATA_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d_.get(), pad_h, pad_w, stride_h, stride_w,
                                                       dil_h, dil_w, CUDNN_CROSS_CORRELATION,
                                                       CUDNN_DATA_FLOAT));
    STRATA_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d_.get(), groups));
    set_math(math);
  }
  void set_math(cudnnMathType_t math) const {
    STRATA_CUDNN_CHECK(cudnnSetConvolutionMathType(d_.get(), math));
  }

 private:
  explicit ConvDesc(cudnnConvolutionDescriptor_t d) : d_(d) {}
  Unique<cudnnConvolutionDescriptor_t, detail::DestroyConvDesc> d_;
};

/// An activation descriptor (the fused conv path uses relu or identity).
class ActivationDesc {
 public:
  [[nodiscard]] static ActivationDesc create() {
    cudnnActivationDescriptor_t d = nullptr;
    STRATA_CUDNN_CHECK(cudnnCreateActivationDescriptor(&d));
    return ActivationDesc(d);
  }
  ActivationDesc() = default;
  [[nodiscard]] cudnnActivationDescriptor_t get() const { return d_.get(); }
  void set(cudnnActivationMode_t mode, double coef = 0.0) const {
    STRATA_CUDNN_CHECK(cudnnSetActivationDescriptor(d_.get(), mode, CUDNN_NOT_PROPAGATE_NAN, coef));
  }

 private:
  explicit ActivationDesc(cudnnActivationDescriptor_t d) : d_(d) {}
  Unique<cudnnActivationDescriptor_t, detail::DestroyActDesc> d_;
};

}  // namespace strata::cuda
