#pragma once
/// A persistent cache of measured convolution algorithms: one line per layer signature,
/// "key<TAB>algo<TAB>math_type<TAB>workspace_bytes<TAB>fuse"
/// (algo -1: Strata's direct convolution kernel), where the key names the GPU, the cuDNN
/// version, the precision and the convolution's exact shape. A second start that finds a key
/// does not time that layer again.
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

namespace strata::cuda {

/// One chosen convolution algorithm.
struct AlgoChoice {
  int algo = 0;       ///< cudnnConvolutionFwdAlgo_t
  int math = 0;       ///< cudnnMathType_t
  std::size_t workspace = 0;
  int fuse = 1;       ///< 1: conv+bias+add+relu as one cuDNN call where allowed; 0: conv + epilogue
};

/// The cache file's contents in memory. Thread-safe; `save` rewrites the file atomically
/// (write beside, then rename).
class AlgoCache {
 public:
  AlgoCache() = default;
  explicit AlgoCache(std::filesystem::path path) : path_(std::move(path)) { load(); }

  [[nodiscard]] std::optional<AlgoChoice> find(const std::string& key) const {
    const std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  void put(const std::string& key, AlgoChoice c) {
    const std::lock_guard lock(mutex_);
    entries_[key] = c;
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
      out << "# strata cuDNN algorithm cache: key\talgo\tmath\tworkspace\tfuse\n";
      for (const auto& [key, c] : entries_) {
        out << key << '\t' << c.algo << '\t' << c.math << '\t' << c.workspace << '\t' << c.fuse << '\n';
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
      AlgoChoice c;
      if (rest >> c.algo >> c.math >> c.workspace) {
        if (!(rest >> c.fuse)) {
          c.fuse = 1;
        }
        entries_[line.substr(0, t1)] = c;
      }
    }
  }

  std::filesystem::path path_;
  std::map<std::string, AlgoChoice> entries_;
  mutable std::mutex mutex_;
};

}  // namespace strata::cuda
