#pragma once
/// Run-time compilation of CUDA C++ with NVRTC, cached on disk: the source is compiled for one
/// GPU architecture to a cubin with the named template instantiations, and the result — cubin
/// and mangled names — is kept in a file named by a hash of everything that determines it
/// (source, instantiations, options, architecture, NVRTC's version). A second compilation of
/// the same program, in this process or a later one, reads the file instead. Host C++: needs
/// nvrtc.h and libnvrtc, no GPU (loading the result needs one: see library.hpp).
#include <nvrtc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "strata/core/error.hpp"

namespace strata::cuda::rtc {

/// A compiled program: the cubin, the mangled name of each requested instantiation (same
/// order), and how it was obtained.
struct Compiled {
  std::string cubin;
  std::vector<std::string> lowered;
  double ms = 0.0;         ///< time to compile, or to read the cached file
  bool from_disk = false;  ///< read from the cache rather than compiled
  std::filesystem::path file;  ///< the cache file (empty when there is no cache directory)
};

/// Where compiled kernels are cached: $STRATA_KERNEL_CACHE ("none" turns the disk cache off),
/// else $XDG_CACHE_HOME/strata, else $HOME/.cache/strata, else the temporary directory's
/// strata-kernels.
[[nodiscard]] inline std::filesystem::path default_cache_dir() {
  if (const char* d = std::getenv("STRATA_KERNEL_CACHE"); d != nullptr && *d != '\0') {
    return std::string_view(d) == "none" ? std::filesystem::path{} : std::filesystem::path(d);
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return std::filesystem::path(x) / "strata";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return std::filesystem::path(h) / ".cache" / "strata";
  }
  std::error_code ec;
  return std::filesystem::temp_directory_path(ec) / "strata-kernels";
}

namespace detail {

inline void nvrtc_check(nvrtcResult r, const char* call, std::string_view program) {
  STRATA_CHECK(r == NVRTC_SUCCESS, "NVRTC call failed: " << call << " -> " << nvrtcGetErrorString(r)
                                                          << " (program '" << program << "')");
}

/// FNV-1a, 64 bits: names the cache file (a collision would need the same program name too,
/// and the file also records the names it was compiled for, which are checked on reading).
[[nodiscard]] inline std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ull) {
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

/// Owns an nvrtcProgram.
class Program {
 public:
  Program(std::string_view source, const std::string& name) {
    const std::string src(source);
    nvrtc_check(nvrtcCreateProgram(&p_, src.c_str(), name.c_str(), 0, nullptr, nullptr),
                "nvrtcCreateProgram", name);
  }
  ~Program() {
    if (p_ != nullptr) {
      (void)nvrtcDestroyProgram(&p_);
    }
  }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  [[nodiscard]] nvrtcProgram get() const { return p_; }
  [[nodiscard]] std::string log() const {
    std::size_t n = 0;
    if (nvrtcGetProgramLogSize(p_, &n) != NVRTC_SUCCESS || n <= 1) {
      return {};
    }
    std::string s(n, '\0');
    (void)nvrtcGetProgramLog(p_, s.data());
    s.resize(n - 1);
    return s;
  }

 private:
  nvrtcProgram p_ = nullptr;
};

inline constexpr std::string_view file_magic = "strata-rtc-cubin 1";

/// Reads a cache file written by write_cached for exactly `names`; false if absent or unusable.
inline bool read_cached(const std::filesystem::path& file, const std::vector<std::string>& names,
                        Compiled& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return false;
  }
  std::string line;
  std::size_t count = 0;
  if (!std::getline(in, line) || line != file_magic || !(in >> count) || count != names.size()) {
    return false;
  }
  in.ignore(1);
  std::vector<std::string> lowered(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string name;
    if (!std::getline(in, name, '\t') || name != names[i] || !std::getline(in, lowered[i])) {
      return false;
    }
  }
  std::ostringstream rest;
  rest << in.rdbuf();
  out.cubin = rest.str();
  out.lowered = std::move(lowered);
  return out.cubin.size() > 16;
}

/// Writes the cache file beside, then renames it into place (readers never see half a file).
/// Failures are ignored: the cache only saves time.
inline void write_cached(const std::filesystem::path& file, const std::vector<std::string>& names,
                         const Compiled& c) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  // A name no other writer uses at the same time: other processes (a random word, the clock)
  // and other threads of this one (its id) may be writing the same file.
  std::uint64_t word = 0;
  try {
    word = std::random_device{}();
  } catch (...) {  // no entropy source: the clock and the thread still tell writers apart
  }
  std::ostringstream who;
  who << word << '.' << std::chrono::steady_clock::now().time_since_epoch().count() << '.'
      << std::this_thread::get_id();
  const std::filesystem::path tmp = file.string() + ".tmp" + std::to_string(fnv1a(who.str()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return;
    }
    out << file_magic << "\n" << names.size() << "\n";
    for (std::size_t i = 0; i < names.size(); ++i) {
      out << names[i] << '\t' << c.lowered[i] << '\n';
    }
    out.write(c.cubin.data(), static_cast<std::streamsize>(c.cubin.size()));
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
  }
}

}  // namespace detail

/// Programs NVRTC has compiled in this process (not those read from the disk cache) and the
/// milliseconds they took, summed over programs (parts compiled side by side each count their
/// own time; a failed compile is not counted). Engines report the difference across their
/// construction (EngineStats). Two counters, each atomic: a read while another thread finishes a
/// compile may see one updated and not yet the other.
struct CompileTally {
  long long programs = 0;
  double ms = 0.0;
};
namespace detail {
inline std::atomic<long long>& tally_programs() {
  static std::atomic<long long> n{0};
  return n;
}
inline std::atomic<long long>& tally_us() {
  static std::atomic<long long> us{0};
  return us;
}
}  // namespace detail
[[nodiscard]] inline CompileTally compile_tally() {
  return {detail::tally_programs().load(), static_cast<double>(detail::tally_us().load()) / 1e3};
}

/// Compiles `source` (program name `name`, for messages and the cache file's name) for
/// compute capability `arch` (90 for sm_90) with the template instantiations `names` (as
/// written in the source: "ns::kernel<float, int>"), or reads the result from `cache_dir`
/// (empty: no disk cache). `arch_specific`: for the architecture's own features (sm_90a:
/// wgmma), code that runs on that compute capability only. Throws strata::Error with NVRTC's
/// log when compilation fails.
[[nodiscard]] inline Compiled compile(std::string_view source, const std::string& name,
                                      const std::vector<std::string>& names, int arch,
                                      const std::filesystem::path& cache_dir = default_cache_dir(),
                                      bool arch_specific = false) {
  const auto start = std::chrono::steady_clock::now();
  const std::string sm = std::to_string(arch) + (arch_specific ? "a" : "");
  const std::string arch_opt = "--gpu-architecture=sm_" + sm;
  const std::vector<const char*> options{arch_opt.c_str(), "-std=c++17"};
  int major = 0;
  int minor = 0;
  detail::nvrtc_check(nvrtcVersion(&major, &minor), "nvrtcVersion", name);
  std::uint64_t key = detail::fnv1a(source);
  for (const std::string& n : names) {
    key = detail::fnv1a(n, detail::fnv1a("\n", key));
  }
  for (const char* o : options) {
    key = detail::fnv1a(o, detail::fnv1a("\n", key));
  }
  key = detail::fnv1a("nvrtc " + std::to_string(major) + "." + std::to_string(minor), key);
  Compiled out;
  auto elapsed = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  if (!cache_dir.empty()) {
    std::ostringstream file;
    file << name << "-sm" << sm << "-" << std::hex << key << ".cubin";
    out.file = cache_dir / file.str();
    if (detail::read_cached(out.file, names, out)) {
      out.from_disk = true;
      out.ms = elapsed();
      return out;
    }
  }
  const detail::Program program(source, name + ".cu");
  for (const std::string& n : names) {
    detail::nvrtc_check(nvrtcAddNameExpression(program.get(), n.c_str()), "nvrtcAddNameExpression",
                        name);
  }
  const nvrtcResult r =
      nvrtcCompileProgram(program.get(), static_cast<int>(options.size()), options.data());
  STRATA_CHECK(r == NVRTC_SUCCESS, "NVRTC could not compile '" << name << "' for sm_" << sm
                                                               << ": " << nvrtcGetErrorString(r)
                                                               << "\n" << program.log());
  std::size_t size = 0;
  detail::nvrtc_check(nvrtcGetCUBINSize(program.get(), &size), "nvrtcGetCUBINSize", name);
  out.cubin.resize(size);
  detail::nvrtc_check(nvrtcGetCUBIN(program.get(), out.cubin.data()), "nvrtcGetCUBIN", name);
  for (const std::string& n : names) {
    const char* lowered = nullptr;
    detail::nvrtc_check(nvrtcGetLoweredName(program.get(), n.c_str(), &lowered),
                        "nvrtcGetLoweredName", name);
    out.lowered.emplace_back(lowered);
  }
  out.ms = elapsed();
  ++detail::tally_programs();
  detail::tally_us() += static_cast<long long>(out.ms * 1e3);
  if (!out.file.empty()) {
    detail::write_cached(out.file, names, out);
  }
  return out;
}

/// A program compiled in parts (compile_parts): part i has the instantiations names[i].
struct CompiledParts {
  std::vector<Compiled> parts;
  std::vector<std::vector<std::string>> names;
  double ms = 0.0;         ///< wall time of the whole, compiled or read
  bool from_disk = false;  ///< every part read from the cache
};

/// compile() of `source` as `parts` programs, part i (named name + ".i") with every parts-th of
/// `names` from the i-th (round robin, so a run of heavy instantiations is spread), compiled on
/// up to `threads` threads at once (NVRTC compiles one program on one core; distinct programs may
/// be compiled concurrently). Each part has its own cache file, so the partition — and the
/// files — do not depend on the number of threads. Throws what the first failing part threw
/// (once one has failed, no further part is started).
[[nodiscard]] inline CompiledParts compile_parts(std::string_view source, const std::string& name,
                                                 const std::vector<std::string>& names, int arch,
                                                 int parts, unsigned threads,
                                                 const std::filesystem::path& cache_dir = default_cache_dir()) {
  const auto start = std::chrono::steady_clock::now();
  parts = std::max(1, std::min(parts, static_cast<int>(std::max<std::size_t>(names.size(), 1))));
  CompiledParts out;
  out.names.resize(static_cast<std::size_t>(parts));
  for (std::size_t i = 0; i < names.size(); ++i) {
    out.names[i % static_cast<std::size_t>(parts)].push_back(names[i]);
  }
  out.parts.resize(static_cast<std::size_t>(parts));
  std::atomic<int> next{0};
  std::mutex failed_mutex;
  std::exception_ptr failed;
  auto work = [&] {
    for (int i = next++; i < parts; i = next++) {
      try {
        out.parts[static_cast<std::size_t>(i)] =
            compile(source, name + "." + std::to_string(i), out.names[static_cast<std::size_t>(i)],
                    arch, cache_dir);
      } catch (...) {
        const std::lock_guard lock(failed_mutex);
        if (!failed) {
          failed = std::current_exception();
        }
        next = parts;  // no new part starts: the build has failed
      }
    }
  };
  const unsigned n = std::clamp<unsigned>(threads, 1u, static_cast<unsigned>(parts));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < n; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {  // no more threads: those started and this one do it all
      break;
    }
  }
  work();
  for (std::thread& t : pool) {
    t.join();
  }
  if (failed) {
    std::rethrow_exception(failed);
  }
  out.from_disk = std::all_of(out.parts.begin(), out.parts.end(),
                              [](const Compiled& c) { return c.from_disk; });
  out.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace strata::cuda::rtc
