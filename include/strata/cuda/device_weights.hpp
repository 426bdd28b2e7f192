#pragma once
/// The device copy of a network's parameters in precision P: batch_norm folded, converted,
/// laid out as the backend stores them (strata/cuda/storage.hpp) and uploaded once. Immutable
/// after construction, so execution contexts on several threads share one copy.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/weights/fold.hpp"
#include "strata/weights/weights.hpp"

namespace strata::cuda {

/// The device element type of a DType.
template <DType P>
struct StorageOf;
template <>
struct StorageOf<DType::f32> { using type = float; };
template <>
struct StorageOf<DType::tf32> { using type = float; };
template <>
struct StorageOf<DType::f16> { using type = __half; };
template <>
struct StorageOf<DType::bf16> { using type = __nv_bfloat16; };

/// Device parameters of one op (empty buffers where the op has none).
struct OpWeights {
  DeviceBuffer weight;     ///< P: conv (Kd, kh, kw, C/g) NHWC or OIHW; dense (Mp, Kin)
  DeviceBuffer bias;       ///< P, padded to the output slots (library epilogues)
  DeviceBuffer bias_f32;   ///< f32, padded (Strata's epilogues)
  DeviceBuffer scale_f32;  ///< stand-alone batch_norm, padded
  DeviceBuffer shift_f32;
};

namespace detail {

/// Host f32 values converted to P's bits (little-endian element array).
template <DType P>
std::vector<std::uint8_t> to_device_bits(const std::vector<float>& v) {
  std::vector<std::uint8_t> out(v.size() * static_cast<std::size_t>(dtype_size(P)));
  if constexpr (!is_16bit(P)) {  // f32 and tf32: f32 storage
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::uint16_t b = P == DType::f16 ? float_to_half(v[i]) : float_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

inline DeviceBuffer upload(const void* data, std::size_t bytes) {
  DeviceBuffer b(bytes);
  if (bytes > 0) {
    STRATA_CUDA_CHECK(cudaMemcpy(b.get(), data, bytes, cudaMemcpyHostToDevice));
  }
  return b;
}

}  // namespace detail

/// Every op's device parameters (indexed as the network's ops), and the GPU they live on.
template <DType P>
class DeviceWeights {
 public:
  /// Folds, converts, lays out and uploads `weights` for the ops of `net` (the network's
  /// storage description); each op's failures name its label.
  template <class Net>
  DeviceWeights(const Weights<Net>& weights, const NetDesc& net) {
    int device = 0;
    STRATA_CUDA_CHECK(cudaGetDevice(&device));
    device_ = device;
    gpu_ = device_name(device);
    const auto& g = std::remove_cvref_t<Net>::graph;
    ops_.resize(static_cast<std::size_t>(g.num_ops));
    for (const OpDesc& d : net.ops) {
      const LayerScope scope(d.label);
      const OpParams p = fold_op_params(g.ops[d.index], weights.all());
      OpWeights& ow = ops_[static_cast<std::size_t>(d.index)];
      if (d.kind == OpKind::conv) {
        put(ow.weight, conv_weights_stored(d.conv, d.layer, net.layout, p.weight), true);
        const std::vector<float> b = padded(p.bias, d.conv.kp);
        put(ow.bias, b, true);
        put(ow.bias_f32, b, false);
      } else if (d.kind == OpKind::dense) {
        put(ow.weight, dense_weights_stored(d, P, p.weight), true);
        put(ow.bias, padded(p.bias, channel_slots(d.layer.out_channels, P)), true);
      } else if (d.kind == OpKind::conv_transpose) {
        put(ow.weight, conv_transpose_weights_stored(d, p.weight), true);
        put(ow.bias_f32, padded(p.bias, d.out_cp), false);
      } else if (d.kind == OpKind::batch_norm) {
        put(ow.scale_f32, padded(p.weight, d.in_cp), false);
        put(ow.shift_f32, padded(p.bias, d.in_cp), false);
      }
    }
  }

  [[nodiscard]] const OpWeights& op(int i) const { return ops_.at(static_cast<std::size_t>(i)); }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  /// The GPU's name ("NVIDIA H100 80GB HBM3"), part of every tuning-cache key.
  [[nodiscard]] const std::string& gpu() const { return gpu_; }
  [[nodiscard]] int device() const { return device_; }

 private:
  void put(DeviceBuffer& dst, const std::vector<float>& v, bool as_p) {
    if (as_p) {
      const auto bits = detail::to_device_bits<P>(v);
      dst = detail::upload(bits.data(), bits.size());
    } else {
      dst = detail::upload(v.data(), v.size() * sizeof(float));
    }
    bytes_ += dst.bytes();
  }

  std::vector<OpWeights> ops_;
  std::size_t bytes_ = 0;
  std::string gpu_;
  int device_ = 0;
};

}  // namespace strata::cuda
