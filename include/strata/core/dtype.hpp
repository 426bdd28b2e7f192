#pragma once
/// Element types (f32, f16, bf16; tf32 as a CUDA engine's precision) and tensor layouts (NCHW,
/// NHWC), with host conversions.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace strata {

/// Element type of a tensor, and a CUDA engine's precision. f32 is the reference; f16/bf16 run
/// on tensor cores. tf32 is an engine precision only (cuda::Engine<Net, DType::tf32>, as
/// TensorRT's TF32 builder flag): f32 storage in NHWC with channels padded to 8, convolutions
/// and matmuls on TF32 tensor cores (10-bit mantissa inputs, f32 accumulation); no tensor is
/// declared tf32.
enum class DType : std::uint8_t { f32, f16, bf16, tf32 };

/// Memory order of a 4-D activation tensor: NCHW (PyTorch's default) or NHWC (tensor cores).
enum class Layout : std::uint8_t { nchw, nhwc };

/// Bytes per element.
[[nodiscard]] constexpr int dtype_size(DType d) {
  return d == DType::f32 || d == DType::tf32 ? 4 : 2;
}

/// Whether `d` stores 16-bit elements (f16, bf16): what Strata's own tensor-core kernels take.
[[nodiscard]] constexpr bool is_16bit(DType d) { return dtype_size(d) == 2; }

[[nodiscard]] constexpr std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::tf32: return "tf32";
  }
  return "?";
}

[[nodiscard]] constexpr std::string_view layout_name(Layout l) {
  return l == Layout::nchw ? "NCHW" : "NHWC";
}

/// IEEE binary16 bits → float (exact).
[[nodiscard]] inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

/// float → IEEE binary16 bits, round to nearest even (overflow → inf, NaN kept).
[[nodiscard]] inline std::uint16_t float_to_half(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
  }
  if (absx >= 0x477ff000u) {  // rounds to >= 65520: overflow
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  }
  if (absx < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    // Adding 0.5f aligns the mantissa so the FPU's rounding does round-to-nearest-even.
    const float r = std::bit_cast<float>(absx) + 0.5f;
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(r) - 0x3f000000u));
  }
  const std::uint32_t odd = (absx >> 13) & 1u;
  const std::uint32_t v = absx + 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round
  return static_cast<std::uint16_t>(sign | (v >> 13));
}

/// bfloat16 bits → float (exact).
[[nodiscard]] inline float bf16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// float → bfloat16 bits, round to nearest even (NaN kept quiet).
[[nodiscard]] inline std::uint16_t float_to_bf16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  }
  const std::uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>((x + rounding) >> 16);
}

}  // namespace strata
