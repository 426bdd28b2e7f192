#pragma once
/// Weights<Net>: a network's parameters on the host in f32, read from a safetensors file (as
/// PyTorch's `save_file(model.state_dict(), path)` writes it) and checked against the network's
/// parameter list — names, shapes, dtypes — with every problem reported at once. Nothing is
/// half-loaded: either all parameters are there and right, or strata::Error is thrown.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/core/name_set.hpp"
#include "strata/pipeline/pipeline.hpp"
#include "strata/weights/safetensors.hpp"

namespace strata {

namespace detail {

inline std::string dims_string(const std::int64_t* dims, int rank) {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < rank; ++i) {
    os << (i ? ", " : "") << dims[i];
  }
  os << "]";
  return os.str();
}

inline bool is_float_dtype(StDType d) {
  return d == StDType::f32 || d == StDType::f16 || d == StDType::bf16 || d == StDType::f64;
}

inline bool is_integer_dtype(StDType d) {
  return d == StDType::i64 || d == StDType::i32 || d == StDType::i16 || d == StDType::i8 ||
         d == StDType::u64 || d == StDType::u32 || d == StDType::u16 || d == StDType::u8;
}

/// Throws one strata::Error "<what> (N <noun>s):" listing `problems`, one per line, if any.
inline void throw_if_any(const std::vector<std::string>& problems, const std::string& what,
                         const char* noun) {
  if (problems.empty()) {
    return;
  }
  std::ostringstream os;
  os << what << " (" << problems.size() << " " << noun << (problems.size() == 1 ? "" : "s")
     << "):";
  for (const std::string& p : problems) {
    os << "\n  - " << p;
  }
  throw Error(os.str());
}

/// Checks `file` against the parameter list and converts every parameter to f32; throws one
/// strata::Error listing all problems.
inline std::vector<std::vector<float>> bind_params(const SafetensorsFile& file,
                                                   std::span<const ParamEntry> params) {
  std::vector<std::string> problems;
  std::set<std::string_view> known;
  for (const ParamEntry& p : params) {
    known.insert(p.name.view());
    const std::string name(p.name.view());
    const TensorInfo* t = file.find(name);
    const std::string expected = dims_string(p.spec.dims, p.spec.rank);
    if (t == nullptr) {
      if (!p.spec.optional) {
        problems.push_back("missing tensor '" + name + "' (expected shape " + expected + ")");
      }
      continue;
    }
    const std::string found = dims_string(t->shape.data(), static_cast<int>(t->shape.size()));
    if (p.spec.integer) {
      if (!is_integer_dtype(t->dtype) || t->numel() != 1) {
        problems.push_back("tensor '" + name + "' should be one integer, found " +
                           std::string(dtype_name(t->dtype)) + " " + found);
      }
      continue;
    }
    if (!is_float_dtype(t->dtype)) {
      problems.push_back("tensor '" + name + "' has dtype " + std::string(dtype_name(t->dtype)) +
                         ", expected F32, F16, BF16 or F64");
    }
    bool same = static_cast<int>(t->shape.size()) == p.spec.rank;
    for (int i = 0; same && i < p.spec.rank; ++i) {
      same = t->shape[static_cast<std::size_t>(i)] == p.spec.dims[i];
    }
    if (!same) {
      problems.push_back("tensor '" + name + "' has shape " + found + ", expected " + expected);
    }
  }
  for (const TensorInfo& t : file.tensors()) {
    if (!known.contains(t.name)) {
      problems.push_back("unexpected tensor '" + t.name + "' " +
                         dims_string(t.shape.data(), static_cast<int>(t.shape.size())) +
                         ": the network has no parameter of that name");
    }
  }
  throw_if_any(problems, file.source() + ": the weights do not match the network", "problem");
  std::vector<std::vector<float>> values(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].spec.integer) {
      continue;
    }
    values[i] = file.to_f32(*file.find(std::string(params[i].name.view())));
    for (float v : values[i]) {
      if (!std::isfinite(v)) {
        problems.push_back("tensor '" + std::string(params[i].name.view()) +
                           "' holds a NaN or infinity");
        break;
      }
    }
  }
  throw_if_any(problems, file.source() + ": the weights are not all finite", "tensor");
  return values;
}

}  // namespace detail

/// The parameters of network `Net` in f32, indexed as `Net::graph.params`.
namespace detail {
/// Whether every parameter of graph `g` has its own name (named<""> around two chains can make
/// two share one, and then one tensor of the file would feed both).
template <class G>
constexpr bool unique_param_names(const G& g) {
  // A hash set: linear in the names' length, within clang's constexpr step budget for
  // DenseNet-121's 727 parameters (all pairs, or sorting, was not).
  NameSet<static_cast<int>(std::extent_v<decltype(G::params)>)> seen{};
  for (int i = 0; i < g.num_params; ++i) {
    if (!seen.insert(g.params[i].name.view())) {
      return false;
    }
  }
  return true;
}
}  // namespace detail

template <class Net>
  requires Network<Net>
class Weights {
 public:
  using Network = std::remove_cvref_t<Net>;
  static_assert(detail::unique_param_names(Network::graph),
                "Weights: two parameters of this network have the same name; give the layers "
                "distinct names (named<\"\"> around several chains numbers each from 0)");

  /// Reads and checks a safetensors file; throws strata::Error naming every problem.
  [[nodiscard]] static Weights load(const std::filesystem::path& path) {
    return from(SafetensorsFile::open(path));
  }
  /// Checks and converts an opened safetensors file.
  [[nodiscard]] static Weights from(const SafetensorsFile& file) {
    return Weights(detail::bind_params(file, param_entries()));
  }
  /// Random weights (fan-in scaled uniform) with non-trivial batch_norm statistics: γ in
  /// [0.5, 1.5], β and running_mean in [-0.5, 0.5], running_var in [0.5, 2]. Deterministic.
  [[nodiscard]] static Weights random(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::vector<float>> values(param_entries().size());
    const auto& g = Network::graph;
    for (int i = 0; i < g.num_params; ++i) {
      const ParamEntry& p = g.params[i];
      if (p.spec.integer) {
        continue;
      }
      const std::string_view s = p.spec.suffix;
      const LayerRow& row = g.rows[p.row];
      float lo = -1.0f;
      float hi = 1.0f;
      if (row.desc.kind == LayerKind::batch_norm) {
        if (s == "weight") {
          lo = 0.5f, hi = 1.5f;
        } else if (s == "running_var") {
          lo = 0.5f, hi = 2.0f;
        } else {
          lo = -0.5f, hi = 0.5f;
        }
      } else {
        // fan_in: conv C/g·kh·kw, dense in; the bias shares its layer's bound.
        const ParamEntry& w = g.params[row.first_param];
        const std::int64_t fan_in = w.spec.numel() / w.spec.dims[0];
        hi = 1.0f / std::sqrt(static_cast<float>(fan_in));
        lo = -hi;
      }
      std::uniform_real_distribution<float> dist(lo, hi);
      auto& v = values[static_cast<std::size_t>(i)];
      v.resize(static_cast<std::size_t>(p.spec.numel()));
      for (float& x : v) {
        x = dist(rng);
      }
    }
    return Weights(std::move(values));
  }

  /// Parameter `index` of `Net::graph.params` (empty for num_batches_tracked).
  [[nodiscard]] std::span<const float> param(int index) const {
    STRATA_CHECK(index >= 0 && index < static_cast<int>(values_.size()),
                 "Weights::param: index " << index << " is outside [0, " << values_.size() << ")");
    return values_[static_cast<std::size_t>(index)];
  }
  /// The parameter with this state_dict name; throws strata::Error if the network has none.
  [[nodiscard]] std::span<const float> operator[](std::string_view name) const {
    const int i = Network::graph.find_param(name);
    STRATA_CHECK(i >= 0, "the network has no parameter named '" << name << "'");
    return param(i);
  }
  /// All parameters, indexed as `Net::graph.params`.
  [[nodiscard]] std::span<const std::vector<float>> all() const { return values_; }

  /// The weights as the tensors of a safetensors file, in `Net::graph.params` order, named as
  /// the state_dict names them (f32; num_batches_tracked as int64 0): what save() writes.
  [[nodiscard]] std::vector<TensorToWrite> tensors() const {
    std::vector<TensorToWrite> out;
    const auto& g = Network::graph;
    for (int i = 0; i < g.num_params; ++i) {
      const ParamEntry& p = g.params[i];
      TensorToWrite t;
      t.name = std::string(p.name.view());
      t.shape.assign(p.spec.dims, p.spec.dims + p.spec.rank);
      if (p.spec.integer) {
        t.dtype = StDType::i64;
        t.data.resize(8);
      } else {
        const auto& v = values_[static_cast<std::size_t>(i)];
        t.dtype = StDType::f32;
        t.data.resize(v.size() * sizeof(float));
        std::memcpy(t.data.data(), v.data(), t.data.size());
      }
      out.push_back(std::move(t));
    }
    return out;
  }
  /// Writes the weights as a safetensors file PyTorch can load with load_state_dict (tensors()).
  void save(const std::filesystem::path& path) const { write_safetensors(path, tensors()); }

 private:
  explicit Weights(std::vector<std::vector<float>> values) : values_(std::move(values)) {}

  static std::span<const ParamEntry> param_entries() {
    return {Network::graph.params, static_cast<std::size_t>(Network::graph.num_params)};
  }

  std::vector<std::vector<float>> values_;
};

}  // namespace strata
