#pragma once
/// A persistent cache of measured tactic choices: one line per op signature,
/// "key<TAB>tactic<TAB>algo<TAB>math<TAB>fuse", where the key names the GPU, the cuDNN version,
/// the precision, the batch and the op's exact shape, and the rest is the chosen Variant. A
/// second start that finds a key does not time that op again; a line naming a tactic this
/// build does not have is ignored (the op is timed again and the line replaced).
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "strata/cuda/tactic.hpp"

namespace strata::cuda {

/// The cache file's contents in memory. Thread-safe; `save` rewrites the file atomically
/// (write beside, then rename).
class TuningCache {
 public:
  TuningCache() = default;
  explicit TuningCache(std::filesystem::path path) : path_(std::move(path)) { load(); }

  [[nodiscard]] std::optional<Variant> find(const std::string& key) const {
    const std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  void put(const std::string& key, Variant v) {
    const std::lock_guard lock(mutex_);
    entries_[key] = std::move(v);
  }
  /// Writes the cache file (no-op without a path). Failures to write are ignored: the cache
  /// only saves time.
  void save() const {
    if (path_.empty()) {
      return;
    }
    const std::lock_guard lock(mutex_);
    std::error_code ec;
    if (path_.has_parent_path()) {
      std::filesystem::create_directories(path_.parent_path(), ec);
    }
    const std::filesystem::path tmp = path_.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      if (!out) {
        return;
      }
      out << "# strata tuning cache: key\ttactic\talgo\tmath\tfuse\n";
      for (const auto& [key, v] : entries_) {
        out << key << '\t' << v.tactic << '\t' << v.algo << '\t' << v.math << '\t' << v.fuse
            << '\n';
      }
    }
    std::filesystem::rename(tmp, path_, ec);
  }
  [[nodiscard]] std::size_t size() const {
    const std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  void load() {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') {
        continue;
      }
      const std::size_t t1 = line.find('\t');
      if (t1 == std::string::npos) {
        continue;
      }
      std::istringstream rest(line.substr(t1 + 1));
      Variant v;
      if (rest >> v.tactic >> v.algo >> v.math >> v.fuse) {
        entries_[line.substr(0, t1)] = v;
      }
    }
  }

  std::filesystem::path path_;
  std::map<std::string, Variant> entries_;
  mutable std::mutex mutex_;
};

}  // namespace strata::cuda
