#pragma once
/// The CPU reference's ops: plain loops over NCHW f32, one function per op kind, written to be
/// obviously correct (accumulation in double where it matters). Each works on one image.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "strata/layers/pool.hpp"
#include "strata/pipeline/graph.hpp"

namespace strata::cpu {

/// act(x) for one value.
[[nodiscard]] inline float activate(ActDesc a, float x) {
  switch (a.kind) {
    case Act::none: return x;
    case Act::relu: return x > 0.0f || std::isnan(x) ? x : 0.0f;  // NaN stays NaN, as PyTorch
    case Act::leaky_relu: return x > 0.0f ? x : a.alpha * x;
    case Act::clip: return std::min(std::max(x, a.alpha), a.beta);
    case Act::sigmoid: return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x))));
    case Act::tanh: return static_cast<float>(std::tanh(static_cast<double>(x)));
    case Act::elu:
      return x > 0.0f ? x : static_cast<float>(a.alpha * std::expm1(static_cast<double>(x)));
    case Act::gelu: {
      const double v = x;
      return static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
    }
    case Act::gelu_tanh: {
      const double v = x;
      const double k = std::sqrt(2.0 / 3.14159265358979323846);
      return static_cast<float>(0.5 * v * (1.0 + std::tanh(k * (v + 0.044715 * v * v * v))));
    }
    case Act::silu: {
      const double v = x;
      return static_cast<float>(v / (1.0 + std::exp(-v)));
    }
    case Act::hardswish: {
      const double v = x;
      return static_cast<float>(v * std::min(std::max(v + 3.0, 0.0), 6.0) / 6.0);
    }
    case Act::hardsigmoid: {
      const double v = x;
      return static_cast<float>(std::min(std::max(v + 3.0, 0.0), 6.0) / 6.0);
    }
    case Act::mish: {
      // softplus as log1p(exp(x)): in double it overflows only past x = 709, where tanh is 1.
      const double v = x;
      return static_cast<float>(v * std::tanh(std::log1p(std::exp(v))));
    }
  }
  return x;
}

/// Convolution of one image: in (C,H,W) → out (O,OH,OW), weight (O, C/g, kh, kw), bias (O),
/// then + residual (same shape as out, may be null), then the activation.
inline void conv(const Op& op, const float* in, const float* weight, const float* bias,
                 const float* residual, float* out) {
  const LayerDesc& d = op.layer;
  const Shape is = op.in_spec.shape;
  const Shape os = op.out_spec.shape;
  const int cpg = is.c / d.groups;          // input channels per group
  const int opg = d.out_channels / d.groups;  // output channels per group
  const int plane = os.h * os.w;
  for (int o = 0; o < os.c; ++o) {
    float* dst = out + static_cast<std::int64_t>(o) * plane;
    std::fill(dst, dst + plane, bias[o]);
    const int g = o / opg;
    for (int ci = 0; ci < cpg; ++ci) {
      const float* src = in + static_cast<std::int64_t>(g * cpg + ci) * is.h * is.w;
      for (int ky = 0; ky < d.kernel.h; ++ky) {
        for (int kx = 0; kx < d.kernel.w; ++kx) {
          const float w = weight[((static_cast<std::int64_t>(o) * cpg + ci) * d.kernel.h + ky) * d.kernel.w + kx];
          // The output columns whose input column ix = ox·s − p + kx·d lies inside the image.
          const int x_off = kx * d.dilation.w - d.padding.w;
          int ox_begin = 0;
          while (ox_begin < os.w && ox_begin * d.stride.w + x_off < 0) {
            ++ox_begin;
          }
          int ox_end = os.w;
          while (ox_end > ox_begin && (ox_end - 1) * d.stride.w + x_off >= is.w) {
            --ox_end;
          }
          for (int oy = 0; oy < os.h; ++oy) {
            const int iy = oy * d.stride.h - d.padding.h + ky * d.dilation.h;
            if (iy < 0 || iy >= is.h) {
              continue;
            }
            float* drow = dst + oy * os.w;
            const float* srow = src + iy * is.w;
            for (int ox = ox_begin; ox < ox_end; ++ox) {
              drow[ox] += w * srow[ox * d.stride.w + x_off];
            }
          }
        }
      }
    }
    for (int i = 0; i < plane; ++i) {
      const float r = residual != nullptr ? residual[static_cast<std::int64_t>(o) * plane + i] : 0.0f;
      dst[i] = activate(op.act, dst[i] + r);
    }
  }
}

/// Transposed convolution of one image: in (C,H,W) → out (O,OH,OW), weight (C, O/g, kh, kw),
/// bias (O): input pixel (iy, ix) adds w·x to output (iy·s − p + ky·d, ix·s − p + kx·d); then
/// the activation.
inline void conv_transpose(const Op& op, const float* in, const float* weight, const float* bias,
                           float* out) {
  const LayerDesc& d = op.layer;
  const Shape is = op.in_spec.shape;
  const Shape os = op.out_spec.shape;
  const int cpg = is.c / d.groups;
  const int opg = d.out_channels / d.groups;
  const std::int64_t plane = static_cast<std::int64_t>(os.h) * os.w;
  for (int o = 0; o < os.c; ++o) {
    std::fill(out + o * plane, out + (o + 1) * plane, bias[o]);
  }
  for (int ci = 0; ci < is.c; ++ci) {
    const int g = ci / cpg;
    const float* src = in + static_cast<std::int64_t>(ci) * is.h * is.w;
    for (int j = 0; j < opg; ++j) {
      float* dst = out + (g * opg + j) * plane;
      const float* w = weight + (static_cast<std::int64_t>(ci) * opg + j) * d.kernel.h * d.kernel.w;
      for (int ky = 0; ky < d.kernel.h; ++ky) {
        for (int kx = 0; kx < d.kernel.w; ++kx) {
          const float wv = w[ky * d.kernel.w + kx];
          for (int iy = 0; iy < is.h; ++iy) {
            const int oy = iy * d.stride.h - d.padding.h + ky * d.dilation.h;
            if (oy < 0 || oy >= os.h) {
              continue;
            }
            for (int ix = 0; ix < is.w; ++ix) {
              const int ox = ix * d.stride.w - d.padding.w + kx * d.dilation.w;
              if (ox >= 0 && ox < os.w) {
                dst[oy * os.w + ox] += wv * src[iy * is.w + ix];
              }
            }
          }
        }
      }
    }
  }
  for (std::int64_t i = 0; i < os.c * plane; ++i) {
    out[i] = activate(op.act, out[i]);
  }
}

/// Fully connected layer of one image: in (K) → out (N) = act(W·in + b), W (N, K).
inline void dense(const Op& op, const float* in, const float* weight, const float* bias, float* out) {
  const int k = op.in_spec.shape.c;
  const int n = op.out_spec.shape.c;
  for (int o = 0; o < n; ++o) {
    double acc = bias[o];
    const float* w = weight + static_cast<std::int64_t>(o) * k;
    for (int i = 0; i < k; ++i) {
      acc += static_cast<double>(w[i]) * in[i];
    }
    out[o] = activate(op.act, static_cast<float>(acc));
  }
}

/// Per-channel y = act(x·scale + shift) (a stand-alone batch_norm).
inline void scale_shift(const Op& op, const float* in, const float* scale, const float* shift,
                        float* out) {
  const Shape s = op.in_spec.shape;
  const std::int64_t plane = static_cast<std::int64_t>(s.h) * s.w;
  for (int c = 0; c < s.c; ++c) {
    for (std::int64_t i = 0; i < plane; ++i) {
      out[c * plane + i] = activate(op.act, in[c * plane + i] * scale[c] + shift[c]);
    }
  }
}

/// Elementwise act(a (+ b)).
inline void pointwise(const Op& op, const float* a, const float* b, float* out) {
  const std::int64_t n = op.in_spec.shape.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    out[i] = activate(op.act, b != nullptr ? a[i] + b[i] : a[i]);
  }
}

/// Max or average pooling of one image with PyTorch's window rules: padding, ceil_mode (a
/// window starting in the right/bottom padding is dropped), and for average pooling the
/// divisor: the window clipped to the padded input (count_include_pad) or to the input.
inline void pool(const Op& op, const float* in, float* out) {
  const LayerDesc& d = op.layer;
  const Shape is = op.in_spec.shape;
  const Shape os = op.out_spec.shape;
  const bool is_max = op.kind == OpKind::max_pool;
  for (int c = 0; c < is.c; ++c) {
    const float* src = in + static_cast<std::int64_t>(c) * is.h * is.w;
    for (int oy = 0; oy < os.h; ++oy) {
      for (int ox = 0; ox < os.w; ++ox) {
        int y0 = oy * d.stride.h - d.padding.h;
        int x0 = ox * d.stride.w - d.padding.w;
        int y1 = std::min(y0 + d.kernel.h, is.h + d.padding.h);
        int x1 = std::min(x0 + d.kernel.w, is.w + d.padding.w);
        const int padded_count = (y1 - y0) * (x1 - x0);
        y0 = std::max(y0, 0);
        x0 = std::max(x0, 0);
        y1 = std::min(y1, is.h);
        x1 = std::min(x1, is.w);
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int y = y0; y < y1; ++y) {
          for (int x = x0; x < x1; ++x) {
            const double v = src[y * is.w + x];
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        }
        if (!is_max) {
          const int count = d.count_include_pad ? padded_count : (y1 - y0) * (x1 - x0);
          acc /= count;
        }
        out[(static_cast<std::int64_t>(c) * os.h + oy) * os.w + ox] = static_cast<float>(acc);
      }
    }
  }
}

/// Mean over H and W per channel.
inline void global_avg_pool(const Op& op, const float* in, float* out) {
  const Shape s = op.in_spec.shape;
  const std::int64_t plane = static_cast<std::int64_t>(s.h) * s.w;
  for (int c = 0; c < s.c; ++c) {
    double acc = 0.0;
    for (std::int64_t i = 0; i < plane; ++i) {
      acc += in[c * plane + i];
    }
    out[c] = static_cast<float>(acc / static_cast<double>(plane));
  }
}

/// Where output pixel `dst` samples the input along one dimension for bilinear interpolation, as
/// PyTorch's area_pixel_compute_source_index: with align_corners the corners coincide (scale
/// (in−1)/(out−1)); without, pixel centres are scaled by 1/factor and the result clamped at 0.
[[nodiscard]] inline double linear_source(int dst, int in_size, int out_size, int factor,
                                          bool align_corners) {
  if (align_corners) {
    return out_size > 1 ? dst * static_cast<double>(in_size - 1) / (out_size - 1) : 0.0;
  }
  const double src = (dst + 0.5) / factor - 0.5;
  return src < 0.0 ? 0.0 : src;
}

/// The two source indices and the second one's weight for output pixel `dst` (bilinear).
struct LinearTap {
  int i0 = 0;
  int i1 = 0;
  double w1 = 0.0;
};
[[nodiscard]] inline LinearTap linear_tap(int dst, int in_size, int out_size, int factor,
                                          bool align_corners) {
  const double src = linear_source(dst, in_size, out_size, factor, align_corners);
  LinearTap t;
  t.i0 = std::min(static_cast<int>(src), in_size - 1);
  t.i1 = std::min(t.i0 + 1, in_size - 1);
  t.w1 = src - t.i0;
  return t;
}

/// Upsampling of one image by integer factors: nearest (source pixel ⌊dst/factor⌋) or bilinear.
inline void upsample(const Op& op, const float* in, float* out) {
  const LayerDesc& d = op.layer;
  const Shape is = op.in_spec.shape;
  const Shape os = op.out_spec.shape;
  for (int c = 0; c < is.c; ++c) {
    const float* src = in + static_cast<std::int64_t>(c) * is.h * is.w;
    float* dst = out + static_cast<std::int64_t>(c) * os.h * os.w;
    for (int oy = 0; oy < os.h; ++oy) {
      const LinearTap ty = linear_tap(oy, is.h, os.h, d.scale.h, d.align_corners);
      for (int ox = 0; ox < os.w; ++ox) {
        if (d.interp == Interp::nearest) {
          dst[oy * os.w + ox] = src[(oy / d.scale.h) * is.w + ox / d.scale.w];
          continue;
        }
        const LinearTap tx = linear_tap(ox, is.w, os.w, d.scale.w, d.align_corners);
        const double top = (1.0 - tx.w1) * src[ty.i0 * is.w + tx.i0] + tx.w1 * src[ty.i0 * is.w + tx.i1];
        const double bottom = (1.0 - tx.w1) * src[ty.i1 * is.w + tx.i0] + tx.w1 * src[ty.i1 * is.w + tx.i1];
        dst[oy * os.w + ox] = static_cast<float>((1.0 - ty.w1) * top + ty.w1 * bottom);
      }
    }
  }
}

/// Adaptive average pooling of one image: output pixel (oy, ox) is the mean of the input's
/// rows [⌊oy·H/OH⌋, ⌈(oy+1)·H/OH⌉) and columns likewise (adaptive_window).
inline void adaptive_avg_pool(const Op& op, const float* in, float* out) {
  const Shape is = op.in_spec.shape;
  const Shape os = op.out_spec.shape;
  for (int c = 0; c < is.c; ++c) {
    const float* src = in + static_cast<std::int64_t>(c) * is.h * is.w;
    for (int oy = 0; oy < os.h; ++oy) {
      const HW rows = adaptive_window(oy, is.h, os.h);
      for (int ox = 0; ox < os.w; ++ox) {
        const HW cols = adaptive_window(ox, is.w, os.w);
        double acc = 0.0;
        for (int y = rows.h; y < rows.w; ++y) {
          for (int x = cols.h; x < cols.w; ++x) {
            acc += src[y * is.w + x];
          }
        }
        out[(static_cast<std::int64_t>(c) * os.h + oy) * os.w + ox] =
            static_cast<float>(acc / ((rows.w - rows.h) * (cols.w - cols.h)));
      }
    }
  }
}

/// A channel gate on one image: out (C,H,W) = x · gate, the gate (C) broadcast over H and W.
inline void channel_scale(const Op& op, const float* x, const float* gate, float* out) {
  const Shape s = op.in_spec.shape;
  const std::int64_t plane = static_cast<std::int64_t>(s.h) * s.w;
  for (int c = 0; c < s.c; ++c) {
    for (std::int64_t i = 0; i < plane; ++i) {
      out[c * plane + i] = x[c * plane + i] * gate[c];
    }
  }
}

/// One image copied (into its channel slice of a concat's output).
inline void copy(const Op& op, const float* in, float* out) {
  std::copy(in, in + op.in_spec.shape.numel(), out);
}

/// softmax / log_softmax over channels (features), per pixel for a (C,H,W) input.
inline void softmax(const Op& op, const float* in, float* out) {
  const Shape s = op.in_spec.shape;
  const std::int64_t plane = static_cast<std::int64_t>(s.h) * s.w;
  for (std::int64_t p = 0; p < plane; ++p) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < s.c; ++c) {
      mx = std::max(mx, static_cast<double>(in[c * plane + p]));
    }
    double sum = 0.0;
    for (int c = 0; c < s.c; ++c) {
      sum += std::exp(static_cast<double>(in[c * plane + p]) - mx);
    }
    for (int c = 0; c < s.c; ++c) {
      const double z = static_cast<double>(in[c * plane + p]) - mx;
      out[c * plane + p] = static_cast<float>(op.kind == OpKind::softmax ? std::exp(z) / sum
                                                                         : z - std::log(sum));
    }
  }
}

}  // namespace strata::cpu
