#pragma once
/// The safetensors weight format: a validating reader (SafetensorsFile) and a writer.
/// Layout: u64 little-endian header length N, N bytes of JSON header, then the data section.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/core/error.hpp"
#include "strata/weights/json.hpp"

namespace strata {

static_assert(std::endian::native == std::endian::little,
              "safetensors: the data section is little-endian and is read in place");

/// Element type of a safetensors tensor, as spelled in the header ("F32", "BF16", "BOOL", ...).
/// The second row is accepted so that real files holding such tensors open; to_f32 rejects it.
// clang-format off
enum class StDType : std::uint8_t {
  f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean,
  u64, u32, u16, f8_e4m3, f8_e5m2
};
// clang-format on

/// The header's spelling of `d`, e.g. "F32".
[[nodiscard]] constexpr std::string_view dtype_name(StDType d) {
  switch (d) {
    case StDType::f64: return "F64";
    case StDType::f32: return "F32";
    case StDType::f16: return "F16";
    case StDType::bf16: return "BF16";
    case StDType::i64: return "I64";
    case StDType::i32: return "I32";
    case StDType::i16: return "I16";
    case StDType::i8: return "I8";
    case StDType::u8: return "U8";
    case StDType::boolean: return "BOOL";
    case StDType::u64: return "U64";
    case StDType::u32: return "U32";
    case StDType::u16: return "U16";
    case StDType::f8_e4m3: return "F8_E4M3";
    case StDType::f8_e5m2: return "F8_E5M2";
  }
  return "?";
}

/// Bytes per element of `d`.
[[nodiscard]] constexpr std::size_t dtype_size(StDType d) {
  switch (d) {
    case StDType::f64:
    case StDType::i64:
    case StDType::u64: return 8;
    case StDType::f32:
    case StDType::i32:
    case StDType::u32: return 4;
    case StDType::f16:
    case StDType::bf16:
    case StDType::i16:
    case StDType::u16: return 2;
    case StDType::i8:
    case StDType::u8:
    case StDType::boolean:
    case StDType::f8_e4m3:
    case StDType::f8_e5m2: return 1;
  }
  return 1;
}

/// The StDType spelled `name` in a header ("F32"), or nullopt when it is not one Strata knows.
[[nodiscard]] constexpr std::optional<StDType> parse_st_dtype(std::string_view name) {
  constexpr StDType all[] = {StDType::f64, StDType::f32,     StDType::f16,    StDType::bf16,
                             StDType::i64, StDType::i32,     StDType::i16,    StDType::i8,
                             StDType::u8,  StDType::boolean, StDType::u64,    StDType::u32,
                             StDType::u16, StDType::f8_e4m3, StDType::f8_e5m2};
  for (StDType d : all) {
    if (dtype_name(d) == name) {
      return d;
    }
  }
  return std::nullopt;
}

/// One tensor of a safetensors file: its dtype, shape and byte range [begin, end) relative to
/// the start of the data section.
struct TensorInfo {
  std::string name;
  StDType dtype = StDType::f32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0;
  std::size_t end = 0;

  /// Number of elements: the product of `shape` (1 for a scalar, shape []).
  [[nodiscard]] std::size_t numel() const {
    std::size_t n = 1;
    for (std::int64_t d : shape) {
      n *= static_cast<std::size_t>(d);
    }
    return n;
  }
  /// Size of the tensor's data in bytes (end - begin).
  [[nodiscard]] std::size_t byte_size() const { return end - begin; }
};

namespace detail::safetensors {

using json::Document;
using json::Node;

/// Largest header Strata accepts; the reference implementation uses the same 100 MB limit.
inline constexpr std::uint64_t max_header_bytes = 100'000'000;
/// Most problems listed in one error; a file with more is garbage and the rest add nothing.
inline constexpr std::size_t max_listed_problems = 100;

/// Text for an error message, cut to `limit` characters.
[[nodiscard]] inline std::string cut(std::string s, std::size_t limit) {
  if (s.size() > limit) {
    s.resize(limit);
    s += "...";
  }
  return s;
}

/// A string as a JSON literal for an error message: ASCII-escaped (whatever its bytes), cut.
[[nodiscard]] inline std::string show(std::string_view text, std::size_t limit = 48) {
  return cut(*json::quote(text, /*ascii=*/true), limit);
}

/// A JSON value (of a header) as text for an error message: scalars as written (strings
/// ASCII-escaped), cut to `limit`; arrays and objects named by type only (they may be deep).
[[nodiscard]] inline std::string show(const Document& doc, const Node& j, std::size_t limit = 48) {
  switch (j.kind) {
    case json::Kind::array:
    case json::Kind::object: return std::string("a JSON ") + std::string(json::kind_name(j.kind));
    case json::Kind::string: return show(doc.string(j), limit);
    default: return cut(std::string(doc.text(j)), limit);
  }
}

/// A tensor name for an error message: as is when printable, else quoted and escaped.
[[nodiscard]] inline std::string show_name(const std::string& name) {
  const bool plain =
      !name.empty() && name.size() <= 200 && std::none_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '"';
      });
  return plain ? name : show(std::string_view(name), 200);
}

/// "[2, 3, 4]"; long shapes are cut after 8 dimensions.
template <class Range>
[[nodiscard]] std::string show_list(const Range& values) {
  std::ostringstream os;
  os << '[';
  std::size_t i = 0;
  for (const auto& v : values) {
    if (i == 8) {
      os << ", ...";
      break;
    }
    os << (i++ == 0 ? "" : ", ") << v;
  }
  os << ']';
  return os.str();
}

/// "an array" / "a string" ... for "X is <kind>, not Y" messages.
[[nodiscard]] inline std::string kind(const Node& j) {
  const bool vowel = j.kind == json::Kind::array || j.kind == json::Kind::object;
  return (vowel ? "an " : "a ") + std::string(json::kind_name(j.kind));
}

/// Reads the u64 at `p` (little-endian; the host is little-endian, see the static_assert).
[[nodiscard]] inline std::uint64_t load_u64(const std::byte* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// Bytes a tensor of `shape` needs (0 when a dimension is 0), or nullopt when that overflows
/// 64 bits. Dimensions must be non-negative.
[[nodiscard]] inline std::optional<std::uint64_t> byte_count(StDType dtype,
                                                             std::span<const std::int64_t> shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    return 0;  // checked first: [2^40, 2^40, 0] is empty, not an overflow
  }
  std::uint64_t bytes = dtype_size(dtype);
  for (std::int64_t d : shape) {
    const auto u = static_cast<std::uint64_t>(d);
    if (bytes > std::numeric_limits<std::uint64_t>::max() / u) {
      return std::nullopt;
    }
    bytes *= u;
  }
  return bytes;
}

/// A validated tensor, or nothing when its entry had problems (already recorded).
struct Entry {
  TensorInfo info;
  bool ok = false;
};

/// Collects problems, each on its own line under one heading naming the source. Keeps the
/// first max_listed_problems lines and counts the rest, so garbage input cannot exhaust memory.
class Problems {
 public:
  void add(std::string line) {
    if (lines_.size() < max_listed_problems) {
      lines_.push_back(std::move(line));
    }
    ++count_;
  }
  void add(const std::string& name, const std::string& what) { add(show_name(name) + ": " + what); }
  [[nodiscard]] bool empty() const { return count_ == 0; }

  [[noreturn]] void raise(const std::string& source) const {
    std::ostringstream os;
    os << source << ": invalid safetensors file (" << count_
       << (count_ == 1 ? " problem):" : " problems):");
    for (const std::string& line : lines_) {
      os << "\n  " << line;
    }
    if (count_ > lines_.size()) {
      os << "\n  ... and " << count_ - lines_.size() << " more";
    }
    throw Error(os.str());
  }

 private:
  std::vector<std::string> lines_;
  std::size_t count_ = 0;
};

/// The parsed header and its top-level entries in header order, each name once with its last
/// member (the one a JSON library keeping one value a key would keep; a pointer into doc's
/// nodes, whose buffer a move of the document keeps).
struct ParsedHeader {
  Document doc;
  std::vector<std::pair<std::string, const Node*>> order;
};

/// Records every key that appears twice in one object nested anywhere in `j` (the value of
/// top-level entry `top`), in header order. Depth is bounded by Document::max_depth.
inline void nested_repeats(const Document& doc, const Node& j, const std::string& top,
                           Problems& problems) {
  if (j.kind != json::Kind::object && j.kind != json::Kind::array) {
    return;
  }
  std::set<std::string> seen;
  doc.for_each(j, [&](const Node& m) {
    if (j.kind == json::Kind::object) {
      if (auto [it, fresh] = seen.insert(doc.key(m)); !fresh) {
        problems.add(top, "duplicate key " + show(*it) + " in its entry");
      }
    }
    nested_repeats(doc, m, top, problems);
  });
}

/// Parses the header; records repeated keys, or the reason it is not a JSON object, in
/// `problems`. The header's text must outlive the result.
[[nodiscard]] inline std::optional<ParsedHeader> parse_header(std::string_view text,
                                                              Problems& problems) {
  std::string error;
  std::optional<Document> doc = Document::parse(text, error);
  if (!doc) {
    problems.add("the header is not valid JSON: " + error);
    return std::nullopt;
  }
  const Node& root = doc->root();
  if (root.kind != json::Kind::object) {
    problems.add("the header is " + kind(root) + ", not a JSON object");
    return std::nullopt;
  }
  ParsedHeader out{std::move(*doc), {}};
  // name -> (extra occurrences, its place in order)
  std::map<std::string, std::pair<std::size_t, std::size_t>> top_repeats;
  out.doc.for_each(out.doc.root(), [&](const Node& m) {
    std::string name = out.doc.key(m);
    if (const auto [it, fresh] = top_repeats.emplace(name, std::pair{0, out.order.size()}); fresh) {
      out.order.emplace_back(std::move(name), &m);
    } else {
      ++it->second.first;
      out.order[it->second.second].second = &m;
    }
  });
  for (const auto& [name, repeats] : top_repeats) {
    if (const std::size_t extra = repeats.first; extra > 0) {
      problems.add(name,
                   std::string(name == "__metadata__" ? "duplicate key" : "duplicate tensor name") +
                       " (it appears " + std::to_string(extra + 1) + " times in the header)");
    }
  }
  out.doc.for_each(out.doc.root(), [&](const Node& m) {
    nested_repeats(out.doc, m, out.doc.key(m), problems);  // (repeated members too)
  });
  return out;
}

/// Reads data_offsets[i] as a non-negative integer, or records why not.
[[nodiscard]] inline std::optional<std::uint64_t> offset_at(const Document& doc,
                                                            const Node& offsets, std::size_t i,
                                                            const std::string& name,
                                                            Problems& problems) {
  const Node& v = doc.element(offsets, i);
  if (v.is_unsigned()) {
    return v.bits;
  }
  problems.add(name, "data_offsets[" + std::to_string(i) + "] is " + show(doc, v) +
                         ", not a non-negative integer");
  return std::nullopt;
}

/// Validates one header entry against a data section of `data_size` bytes.
[[nodiscard]] inline Entry check_entry(const std::string& name, const Document& doc,
                                       const Node& entry, std::size_t data_size,
                                       Problems& problems) {
  Entry out;
  out.info.name = name;
  if (entry.kind != json::Kind::object) {
    problems.add(name, "entry is " + kind(entry) +
                           ", not an object with \"dtype\", \"shape\" and \"data_offsets\"");
    return out;
  }
  bool ok = true;

  std::optional<StDType> dtype;
  if (const Node* it = doc.find(entry, "dtype"); it == nullptr) {
    problems.add(name, "missing \"dtype\"");
  } else if (it->kind != json::Kind::string) {
    problems.add(name, "\"dtype\" is " + kind(*it) + ", not a string");
  } else if (dtype = parse_st_dtype(doc.string(*it)); !dtype) {
    problems.add(name, "unknown dtype " + show(doc, *it));
  }
  ok = ok && dtype.has_value();

  bool shape_ok = false;
  if (const Node* it = doc.find(entry, "shape"); it == nullptr) {
    problems.add(name, "missing \"shape\"");
  } else if (it->kind != json::Kind::array) {
    problems.add(name, "\"shape\" is " + kind(*it) + ", not an array of dimensions");
  } else {
    shape_ok = true;
    std::size_t i = 0;
    doc.for_each(*it, [&](const Node& d) {
      if (!shape_ok) {
        return;  // report the first bad one
      }
      auto where = [&] { return "shape[" + std::to_string(i) + "] is " + show(doc, d); };
      if (d.is_unsigned() && d.bits <= std::uint64_t{std::numeric_limits<std::int64_t>::max()}) {
        out.info.shape.push_back(static_cast<std::int64_t>(d.bits));
      } else if (d.is_unsigned()) {
        problems.add(name, where() + ", too large for a dimension");
        shape_ok = false;
      } else if (d.is_integer()) {
        problems.add(name, where() + ": dimensions must be non-negative");
        shape_ok = false;
      } else {
        problems.add(name, where() + ", not an integer");
        shape_ok = false;
      }
      ++i;
    });
  }
  ok = ok && shape_ok;

  std::optional<std::uint64_t> needed;  // bytes the shape needs
  if (dtype && shape_ok) {
    out.info.dtype = *dtype;
    needed = byte_count(*dtype, out.info.shape);
    if (!needed) {
      problems.add(name, "shape " + show_list(out.info.shape) + " of " +
                             std::string(dtype_name(*dtype)) +
                             " needs more bytes than fit in 64 bits");
      ok = false;
    }
  }

  std::optional<std::uint64_t> begin;
  std::optional<std::uint64_t> end;
  if (const Node* it = doc.find(entry, "data_offsets"); it == nullptr) {
    problems.add(name, "missing \"data_offsets\"");
  } else if (it->kind != json::Kind::array) {
    problems.add(name, "\"data_offsets\" is " + kind(*it) + ", not an array [begin, end]");
  } else if (it->size != 2) {
    problems.add(name, "\"data_offsets\" has " + std::to_string(it->size) +
                           " elements, not 2 [begin, end]");
  } else {
    begin = offset_at(doc, *it, 0, name, problems);
    end = offset_at(doc, *it, 1, name, problems);
  }
  if (!begin || !end) {
    return out;
  }
  const std::string offsets =
      "data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) + "]";
  if (*end < *begin) {
    problems.add(name, offsets + " end before they begin");
    return out;
  }
  if (*end > data_size) {
    problems.add(name, offsets + " run past the end of the data section (" +
                           std::to_string(data_size) + " bytes): the file is truncated");
    return out;
  }
  if (needed && *end - *begin != *needed) {
    problems.add(name, offsets + " hold " + std::to_string(*end - *begin) + " bytes but " +
                           std::string(dtype_name(out.info.dtype)) + " " +
                           show_list(out.info.shape) + " needs " + std::to_string(*needed));
    return out;
  }
  out.info.begin = static_cast<std::size_t>(*begin);
  out.info.end = static_cast<std::size_t>(*end);
  out.ok = ok;
  return out;
}

/// Records every tensor whose bytes overlap an earlier one's (empty tensors never overlap).
inline void check_overlaps(const std::vector<TensorInfo>& tensors, Problems& problems) {
  std::vector<const TensorInfo*> sorted;
  for (const auto& t : tensors) {
    if (t.end > t.begin) {
      sorted.push_back(&t);
    }
  }
  std::sort(sorted.begin(), sorted.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const TensorInfo* reach = nullptr;  // the tensor reaching furthest so far
  for (const TensorInfo* t : sorted) {
    if (reach != nullptr && t->begin < reach->end) {
      problems.add(t->name, "bytes [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
                                ") overlap those of " + show_name(reach->name) + " [" +
                                std::to_string(reach->begin) + ", " + std::to_string(reach->end) +
                                ")");
    }
    if (reach == nullptr || t->end > reach->end) {
      reach = t;
    }
  }
}

/// Rounds a double to the nearest float; out-of-range values become ±inf as IEEE 754 does
/// (a plain cast of an out-of-range double is undefined behaviour in C++).
[[nodiscard]] inline float narrow_to_float(double d) {
  constexpr double limit = 0x1.ffffffp127;  // halfway between FLT_MAX and 2^128: rounds to inf
  if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max())) {
    const float big = std::fabs(d) >= limit ? std::numeric_limits<float>::infinity()
                                            : std::numeric_limits<float>::max();
    return d < 0 ? -big : big;
  }
  return static_cast<float>(d);
}

}  // namespace detail::safetensors

/// A safetensors file held in memory, its header validated in full. Move-only: it owns the
/// bytes (a model's weights), and the spans bytes() returns stay valid across a move.
class SafetensorsFile {
 public:
  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile() = default;

  /// Reads and validates the whole file at `path`; throws strata::Error naming the path.
  [[nodiscard]] static SafetensorsFile open(const std::filesystem::path& path) {
    const std::string source = path.string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      throw Error(source +
                  ": cannot open: " + (ec ? ec.message() : std::string("not a regular file")));
    }
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      throw Error(source + ": cannot read its size: " + ec.message());
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw Error(source + ": cannot open for reading");
    }
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (static_cast<std::uintmax_t>(in.gcount()) != size) {
      throw Error(source + ": read " + std::to_string(in.gcount()) + " of " + std::to_string(size) +
                  " bytes");
    }
    return from_bytes(std::move(bytes), source);
  }

  /// Validates `bytes` as a safetensors file; `source_name` starts every error message.
  /// Throws one strata::Error listing every problem found, one per line.
  [[nodiscard]] static SafetensorsFile from_bytes(std::vector<std::byte> bytes,
                                                  std::string source_name) {
    namespace st = detail::safetensors;
    st::Problems problems;
    if (bytes.size() < 8) {
      problems.add("the file is " + std::to_string(bytes.size()) +
                   " bytes long, too short for the 8-byte header length");
      problems.raise(source_name);
    }
    const std::uint64_t header_len = st::load_u64(bytes.data());
    const std::uint64_t after = bytes.size() - 8;
    if (header_len > st::max_header_bytes) {
      problems.add("header length " + std::to_string(header_len) + " is over the " +
                   std::to_string(st::max_header_bytes) +
                   "-byte limit: not a safetensors file, or a corrupt one");
      problems.raise(source_name);
    }
    if (header_len > after) {
      problems.add("header length " + std::to_string(header_len) +
                   " runs past the end of the file (" + std::to_string(after) +
                   " bytes after the length): the file is truncated");
      problems.raise(source_name);
    }
    const auto header_size = static_cast<std::size_t>(header_len);
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_size);
    std::optional<st::ParsedHeader> header = st::parse_header(text, problems);
    if (!header) {
      problems.raise(source_name);
    }

    SafetensorsFile file;
    file.data_offset_ = 8 + header_size;
    const std::size_t data_size = bytes.size() - file.data_offset_;
    const st::Document& doc = header->doc;
    for (const auto& [name, member] : header->order) {
      const st::Node& entry = *member;
      if (name == "__metadata__") {
        file.read_metadata(doc, entry, problems);
        continue;
      }
      st::Entry e = st::check_entry(name, doc, entry, data_size, problems);
      if (e.ok) {
        file.tensors_.push_back(std::move(e.info));
      }
    }
    st::check_overlaps(file.tensors_, problems);
    if (!problems.empty()) {
      problems.raise(source_name);
    }
    for (std::size_t i = 0; i < file.tensors_.size(); ++i) {
      file.index_.emplace(file.tensors_[i].name, i);
    }
    file.bytes_ = std::move(bytes);
    file.source_ = std::move(source_name);
    return file;
  }

  /// Every tensor, in the order of the header.
  [[nodiscard]] const std::vector<TensorInfo>& tensors() const { return tensors_; }

  /// The tensor called `name`, or nullptr when the file has none.
  [[nodiscard]] const TensorInfo* find(std::string_view name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

  /// The tensor called `name`; throws strata::Error naming the file when it has none.
  [[nodiscard]] const TensorInfo& at(std::string_view name) const {
    if (const TensorInfo* t = find(name)) {
      return *t;
    }
    throw Error(source_ + ": no tensor named " + detail::safetensors::show_name(std::string(name)));
  }

  /// The raw little-endian bytes of `t`, which must describe a range inside this file.
  [[nodiscard]] std::span<const std::byte> bytes(const TensorInfo& t) const {
    const std::size_t data_size = bytes_.size() - data_offset_;
    if (t.begin > t.end || t.end > data_size) {
      throw Error(source_ + ": " + detail::safetensors::show_name(t.name) + ": byte range [" +
                  std::to_string(t.begin) + ", " + std::to_string(t.end) +
                  ") lies outside the data section (" + std::to_string(data_size) + " bytes)");
    }
    return std::span<const std::byte>(bytes_).subspan(data_offset_ + t.begin, t.end - t.begin);
  }

  /// The elements of `t` as floats, in the file's (row-major) order. F32/F16/BF16/F64 only;
  /// any other dtype throws strata::Error naming the tensor.
  [[nodiscard]] std::vector<float> to_f32(const TensorInfo& t) const {
    const std::span<const std::byte> raw = bytes(t);
    const std::size_t size = dtype_size(t.dtype);
    const bool convertible = t.dtype == StDType::f32 || t.dtype == StDType::f16 ||
                             t.dtype == StDType::bf16 || t.dtype == StDType::f64;
    if (!convertible) {
      throw Error(source_ + ": " + detail::safetensors::show_name(t.name) +
                  ": cannot convert dtype " + std::string(dtype_name(t.dtype)) +
                  " to f32 (only F32, F16, BF16 and F64)");
    }
    const std::size_t n = raw.size() / size;
    std::vector<float> out(n);
    const std::byte* p = raw.data();
    for (std::size_t i = 0; i < n; ++i, p += size) {  // memcpy: the data need not be aligned
      switch (t.dtype) {
        case StDType::f32: std::memcpy(&out[i], p, 4); break;
        case StDType::f16: out[i] = half_to_float(load<std::uint16_t>(p)); break;
        case StDType::bf16: out[i] = bf16_to_float(load<std::uint16_t>(p)); break;
        case StDType::f64: out[i] = detail::safetensors::narrow_to_float(load<double>(p)); break;
        default: break;
      }
    }
    return out;
  }

  /// The name errors start with: the path for open(), the given name for from_bytes().
  [[nodiscard]] const std::string& source() const { return source_; }

  /// The header's "__metadata__" (string -> string); empty when it has none.
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;

  template <class T>
  [[nodiscard]] static T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }

  void read_metadata(const detail::json::Document& doc, const detail::json::Node& j,
                     detail::safetensors::Problems& problems) {
    namespace st = detail::safetensors;
    if (j.kind != detail::json::Kind::object) {
      problems.add("__metadata__", "entry is " + st::kind(j) + ", not an object of strings");
      return;
    }
    doc.for_each(j, [&](const detail::json::Node& value) {
      std::string key = doc.key(value);
      if (value.kind == detail::json::Kind::string) {
        metadata_.emplace(std::move(key), doc.string(value));
      } else {
        problems.add("__metadata__", "value of " + st::show(key) + " is " + st::kind(value) +
                                         ", not a string");
      }
    });
  }

  std::vector<std::byte> bytes_;
  std::size_t data_offset_ = 0;  // 8 + header length
  std::string source_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

/// One tensor for write_safetensors/encode_safetensors: `data` holds its little-endian bytes,
/// numel(shape) * dtype_size(dtype) of them.
struct TensorToWrite {
  std::string name;
  StDType dtype = StDType::f32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;
};

/// A safetensors file holding `tensors` (in that order, packed) and `metadata`. The header is
/// padded with spaces to a multiple of 8 so the data section is 8-byte aligned.
[[nodiscard]] inline std::vector<std::byte> encode_safetensors(
    const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata = {}) {
  std::string header = "{";
  auto quoted = [](const std::string& s) {
    std::optional<std::string> q = detail::json::quote(s, /*ascii=*/false);
    if (!q) {
      throw Error("encode_safetensors: " + detail::safetensors::show_name(s) +
                  " is not valid UTF-8");
    }
    return std::move(*q);
  };
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      header += (first ? "" : ",") + quoted(key) + ":" + quoted(value);
      first = false;
    }
    header += "}";
  }
  std::set<std::string_view> names;
  std::size_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string shown = detail::safetensors::show_name(t.name);
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      throw Error("encode_safetensors: " + shown + ": duplicate or reserved tensor name");
    }
    const bool negative = std::any_of(t.shape.begin(), t.shape.end(), [](auto d) { return d < 0; });
    const std::optional<std::uint64_t> needed =
        negative ? std::nullopt : detail::safetensors::byte_count(t.dtype, t.shape);
    if (!needed) {
      throw Error("encode_safetensors: " + shown + ": bad shape " +
                  detail::safetensors::show_list(t.shape));
    }
    if (*needed != t.data.size()) {
      throw Error("encode_safetensors: " + shown + ": " + std::to_string(t.data.size()) +
                  " bytes of data but " + std::string(dtype_name(t.dtype)) + " " +
                  detail::safetensors::show_list(t.shape) + " needs " + std::to_string(*needed));
    }
    // Appends piece by piece (g++ 12 warns wrongly, -Wrestrict, on "literal" + std::string).
    header += header.size() > 1 ? "," : "";
    header += quoted(t.name);
    header += ":{\"dtype\":\"";
    header += dtype_name(t.dtype);
    header += "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      header += i == 0 ? "" : ",";
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + t.data.size()) + "]}";
    offset += t.data.size();
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::vector<std::byte> out(8 + header.size() + offset);
  const std::uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  std::byte* p = out.data() + 8 + header.size();
  for (const TensorToWrite& t : tensors) {
    if (!t.data.empty()) {
      std::memcpy(p, t.data.data(), t.data.size());
    }
    p += t.data.size();
  }
  return out;
}

/// Writes encode_safetensors(tensors, metadata) to `path`; throws strata::Error on failure.
inline void write_safetensors(const std::filesystem::path& path,
                              const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const std::vector<std::byte> bytes = encode_safetensors(tensors, metadata);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    throw Error(path.string() + ": cannot open for writing");
  }
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.flush();
  if (!out) {
    throw Error(path.string() + ": write failed");
  }
}

}  // namespace strata
