#pragma once
/// summary(): a torchinfo-like table of a lowered graph (layer, output shape, parameters,
/// FLOPs), and the fused op list. Host only, no GPU needed.
#include <algorithm>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

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
    case LayerKind::conv_transpose:
      os << " " << d.kernel.h << "x" << d.kernel.w;
      hw("s", d.stride, 1);
      hw("p", d.padding, 0);
      hw("op", d.output_padding, 0);
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
    case LayerKind::upsample:
      os << " x" << d.scale.h;
      if (d.scale.w != d.scale.h) {
        os << "x" << d.scale.w;
      }
      os << (d.interp == Interp::nearest ? " nearest" : " bilinear");
      if (d.align_corners) {
        os << " align_corners";
      }
      break;
    case LayerKind::adaptive_avg_pool:
      os << " -> " << d.out_size.h << "x" << d.out_size.w;
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

namespace detail {

/// Prints `rows` (the first one the header) in columns as wide as their widest cell, two spaces
/// apart, after `indent` spaces; column c is right-aligned where `right[c]`. With `rule`, a line
/// of '=' as wide as the table goes under the header and after the last row. Widths come from the
/// content, so any index, shape or name lines up; a left-aligned last column is not padded.
inline void print_table(std::ostream& os, const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right, std::size_t indent, bool rule) {
  std::vector<std::size_t> width(right.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  std::size_t total = indent;
  for (std::size_t c = 0; c < width.size(); ++c) {
    total += width[c] + (c > 0 ? 2 : 0);
  }
  const std::string pad(indent, ' ');
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string line = pad;
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const std::string& cell = rows[r][c];
      const std::string fill(width[c] - cell.size(), ' ');
      line += c > 0 ? "  " : "";
      const bool last = c + 1 == rows[r].size();
      line += right[c] ? fill + cell : (last ? cell : cell + fill);
    }
    os << line << "\n";
    if (rule && (r == 0 || r + 1 == rows.size())) {
      os << std::string(total, '=') << "\n";
    }
  }
}

}  // namespace detail

/// Prints the layer table of `g` (input type `in`): one row per declared node, its path (indented
/// by depth), type, output shape, parameters and FLOPs per image; then the totals and the fused
/// ops that run, by label, with their output shapes and FLOPs.
template <class G>
void print_summary(std::ostream& os, const G& g, TensorSpec in, std::int64_t activation_bytes) {
  std::vector<std::vector<std::string>> layers;
  layers.push_back({"Layer", "Type", "Output shape", "Params", "FLOPs"});
  layers.push_back({"input", "", shape_string(in.shape), "-", "-"});
  for (int i = 0; i < g.num_rows; ++i) {
    const LayerRow& r = g.rows[i];
    const std::string indent(static_cast<std::size_t>(2 * r.depth), ' ');
    layers.push_back({indent + std::string(r.name.view()),
                      r.composite ? std::string(r.kind) : describe(r.desc),
                      shape_string(r.out.shape), std::to_string(r.params),
                      std::to_string(r.flops)});
  }
  detail::print_table(os, layers, {false, false, false, true, true}, 0, true);
  os << "Parameters:            " << g.learnable_params() << "\n"
     << "FLOPs per image:       " << g.flops() << "\n"
     << "Activations per image: " << activation_bytes << " bytes (f32 arena)\n"
     << "Fused ops (" << g.num_ops << "):\n";
  std::vector<std::vector<std::string>> ops;
  ops.push_back({"#", "Op", "Output shape", "FLOPs"});
  for (int i = 0; i < g.num_ops; ++i) {
    ops.push_back({std::to_string(i), std::string(g.ops[i].label.view()),
                   shape_string(g.ops[i].out_spec.shape), std::to_string(g.ops[i].flops)});
  }
  detail::print_table(os, ops, {true, false, false, true}, 2, false);
}

}  // namespace strata
