#pragma once
/// Reader for the IDX files of MNIST (LeCun's format): idx3-ubyte images, idx1-ubyte labels.
#include <strata/core/error.hpp>

#include <array>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ios>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace strata::mnist {

/// `count` images of `rows`×`cols` uint8 pixels, row-major, image after image: pixel (n, r, c)
/// is `pixels[(n * rows + r) * cols + c]`; 0 = background, 255 = ink.
struct Images {
  int count = 0;
  int rows = 0;
  int cols = 0;
  std::vector<std::uint8_t> pixels;
};

namespace detail {

inline constexpr std::uint32_t idx_images_magic = 0x00000803;  // uint8 data, 3 dimensions
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;  // uint8 data, 1 dimension

[[noreturn]] inline void idx_fail(const std::filesystem::path& path, std::string_view what) {
  std::ostringstream os;
  os << "IDX file " << path << ": " << what;
  throw Error(os.str());
}

/// The whole file's bytes; throws when it cannot be opened or read.
[[nodiscard]] inline std::vector<std::uint8_t> idx_read_all(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    idx_fail(path, "cannot be read (" + ec.message() + ")");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    idx_fail(path, "cannot be opened");
  }
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  // char and uint8_t share size and alignment; this is the usual way to read bytes.
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::uintmax_t>(in.gcount()) != size) {
    idx_fail(path, "could not be read to the end");
  }
  return bytes;
}

/// The big-endian u32 at byte `offset` (the caller checks that it is in range).
[[nodiscard]] inline std::uint32_t idx_u32(const std::vector<std::uint8_t>& b, std::size_t offset) {
  return (std::uint32_t{b[offset]} << 24) | (std::uint32_t{b[offset + 1]} << 16) |
         (std::uint32_t{b[offset + 2]} << 8) | std::uint32_t{b[offset + 3]};
}

/// Checks the header (magic and `dims` u32 sizes, each at most INT_MAX; those after the first
/// nonzero) and that the file holds exactly the product of the sizes in data bytes. Returns the
/// sizes.
template <std::size_t Dims>
[[nodiscard]] std::array<int, Dims> idx_check_header(const std::filesystem::path& path,
                                                     const std::vector<std::uint8_t>& bytes,
                                                     std::uint32_t magic,
                                                     std::string_view kind) {
  constexpr std::size_t header = 4 * (1 + Dims);
  const auto too_short = [&] {
    std::ostringstream os;
    os << "is " << bytes.size() << " bytes long, shorter than the " << header
       << "-byte header of an " << kind << " file";
    idx_fail(path, os.str());
  };
  if (bytes.size() < 4) {
    too_short();
  }
  // The magic first: a file of the wrong kind says so, whatever its length.
  if (const auto found = idx_u32(bytes, 0); found != magic) {
    std::ostringstream os;
    os << std::hex << std::uppercase << std::setfill('0') << "has magic number 0x"
       << std::setw(8) << found << ", expected 0x" << std::setw(8) << magic << " (" << kind
       << " file)";
    idx_fail(path, os.str());
  }
  if (bytes.size() < header) {
    too_short();
  }
  std::array<int, Dims> dims{};
  std::uint64_t expected = header;
  std::uint64_t data = 1;
  for (std::size_t i = 0; i < Dims; ++i) {
    const std::uint32_t d = idx_u32(bytes, 4 * (1 + i));
    if (d > static_cast<std::uint32_t>(INT_MAX) || (i > 0 && d == 0)) {
      std::ostringstream os;
      os << "has an invalid size " << d << " in dimension " << i << " of its header";
      idx_fail(path, os.str());
    }
    dims[i] = static_cast<int>(d);
    // Checked before multiplying, so the product cannot overflow u64.
    constexpr std::uint64_t max_data = std::uint64_t{1} << 40;
    if (d != 0 && data > max_data / d) {
      idx_fail(path, "has a header whose sizes multiply to more than 2^40 bytes");
    }
    data *= d;
  }
  expected += data;
  if (bytes.size() != expected) {
    std::ostringstream os;
    os << "is " << bytes.size() << " bytes long, but its header (";
    for (std::size_t i = 0; i < Dims; ++i) {
      os << (i ? " x " : "") << dims[i];
    }
    os << ") needs exactly " << expected << " bytes"
       << (bytes.size() < expected ? " (truncated?)" : " (trailing bytes?)");
    idx_fail(path, os.str());
  }
  return dims;
}

}  // namespace detail

/// Reads an idx3-ubyte image file (magic 0x00000803, then count, rows, cols as big-endian u32,
/// then count*rows*cols uint8 pixels). Throws strata::Error naming the file and the problem
/// when it is missing, has another magic, or is not exactly as long as its header says.
[[nodiscard]] inline Images read_idx_images(const std::filesystem::path& path) {
  auto bytes = detail::idx_read_all(path);
  const auto dims = detail::idx_check_header<3>(path, bytes, detail::idx_images_magic,
                                                "idx3-ubyte image");
  Images images;
  images.count = dims[0];
  images.rows = dims[1];
  images.cols = dims[2];
  images.pixels.assign(bytes.begin() + 16, bytes.end());
  return images;
}

/// Reads an idx1-ubyte label file (magic 0x00000801, then count as big-endian u32, then count
/// uint8 labels). Throws strata::Error as read_idx_images does; label values are not checked.
[[nodiscard]] inline std::vector<std::uint8_t> read_idx_labels(const std::filesystem::path& path) {
  auto bytes = detail::idx_read_all(path);
  (void)detail::idx_check_header<1>(path, bytes, detail::idx_labels_magic, "idx1-ubyte label");
  return {bytes.begin() + 8, bytes.end()};
}

}  // namespace strata::mnist
