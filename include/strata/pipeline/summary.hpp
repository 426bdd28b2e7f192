#pragma once
/// summary(): a torchinfo-like table of a lowered graph (layer, output shape, parameters,
/// FLOPs), and the fused op list. Host only, no GPU needed.
#include <cstdint>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>

#include "strata/pipeline/graph.hpp"

namespace strata {

/// "(32, 14, 14)" or "(3136)".
[[nodiscard]] inline std::string shape_string(const Shape& s) {
  std::ostringstream os;
  if (s.flat()) {
    os << "(" << s.c << ")";
  } else {
    os << "(" << s.c << ", " << s.h << ", " << s.w << ")";
  }
  return os.str();
}

/// A short description of a leaf layer: "conv 3x3 s1 p1 → 32", "max_pool 2x2 s2".
[[nodiscard]] inline std::string describe(const LayerDesc& d) {
  std::ostringstream os;
  os << layer_kind_name(d);
  auto hw = [&](const char* tag, HW v, int skip) {
    if (v.h == skip && v.w == skip) {
      return;
    }
    os << " " << tag;
    if (v.h == v.w) {
      os << v.h;
    } else {
      os << v.h << "x" << v.w;
    }
  };
  switch (d.kind) {
    case LayerKind::conv:
      os << " " << d.kernel.h << "x" << d.kernel.w;
      hw("s", d.stride, 1);
      hw("p", d.padding, 0);
      hw("d", d.dilation, 1);
      if (d.groups != 1) {
        os << " g" << d.groups;
      }
      os << " -> " << d.out_channels;
      if (!d.bias) {
        os << " (no bias)";
      }
      break;
    case LayerKind::max_pool:
    case LayerKind::avg_pool:
      os << " " << d.kernel.h << "x" << d.kernel.w;
      hw("s", d.stride, 0);
      hw("p", d.padding, 0);
      if (d.ceil_mode) {
        os << " ceil";
      }
      break;
    case LayerKind::dense:
      os << " -> " << d.out_channels;
      if (!d.bias) {
        os << " (no bias)";
      }
      break;
    case LayerKind::activation:
      if (d.act.kind == Act::leaky_relu || d.act.kind == Act::elu) {
        os << "(" << d.act.alpha << ")";
      } else if (d.act.kind == Act::clip) {
        os << "(" << d.act.alpha << ", " << d.act.beta << ")";
      }
      break;
    default: break;
  }
  return os.str();
}

/// Prints the layer table of `g` (input type `in`), then its totals and fused ops.
template <class G>
void print_summary(std::ostream& os, const G& g, TensorSpec in, std::int64_t activation_bytes) {
  const auto old_flags = os.flags();
  os << std::left << std::setw(44) << "Layer" << std::setw(18) << "Output shape" << std::right
     << std::setw(12) << "Params" << std::setw(16) << "FLOPs" << "\n"
     << std::string(90, '=') << "\n";
  os << std::left << std::setw(44) << "input" << std::setw(18) << shape_string(in.shape)
     << std::right << std::setw(12) << "-" << std::setw(16) << "-" << "\n";
  for (int i = 0; i < g.num_rows; ++i) {
    const LayerRow& r = g.rows[i];
    std::string label(static_cast<std::size_t>(2 * r.depth), ' ');
    label += std::string(r.name.view());
    label += "  ";
    label += r.composite ? std::string(r.kind) : describe(r.desc);
    if (label.size() > 43) {
      label = label.substr(0, 40) + "...";
    }
    os << std::left << std::setw(44) << label << std::setw(18) << shape_string(r.out.shape)
       << std::right << std::setw(12) << r.params << std::setw(16) << r.flops << "\n";
  }
  os << std::string(90, '=') << "\n"
     << "Parameters:            " << g.learnable_params() << "\n"
     << "FLOPs per image:       " << g.flops() << "\n"
     << "Activations per image: " << activation_bytes << " bytes (f32 arena)\n"
     << "Fused ops (" << g.num_ops << "):\n";
  for (int i = 0; i < g.num_ops; ++i) {
    os << "  " << std::setw(3) << i << "  " << g.ops[i].label.view() << "\n";
  }
  os.flags(old_flags);
}

}  // namespace strata
