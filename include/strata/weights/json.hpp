#pragma once
/// A strict JSON reader (RFC 8259) for safetensors headers, and the string escaping the writer
/// and error messages use. Strata's own so that the library needs nothing beyond the standard
/// library (and so that every translation unit including strata.hpp does not parse a general
/// JSON library: about 2.7 s of g++'s time each).
///
/// `Document::parse` checks the whole text — one value, RFC 8259's grammar exactly, strings of
/// well-formed UTF-8 with valid escapes (surrogates paired), at most `max_depth` nested arrays
/// and objects, no number beyond a double's range (as nlohmann::json and the safetensors
/// reference, serde_json, reject them) — and keeps a tree of nodes pointing into the text: an
/// object's members stay in the order of the text, repeated keys included (the caller decides
/// what a repeat means); a string's characters and a number's digits are read from the text
/// when asked for. Integers are classified as nlohmann::json classifies them: unsigned where the
/// value fits 64 bits, signed where a negative one fits, else floating. A parse error gives the
/// byte, line and column.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::detail::json {

enum class Kind : std::uint8_t { null, boolean, number, string, array, object };
enum class Number : std::uint8_t { none, unsigned_int, signed_int, floating };

/// "null", "boolean", "number", "string", "array", "object".
[[nodiscard]] constexpr std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::null: return "null";
    case Kind::boolean: return "boolean";
    case Kind::number: return "number";
    case Kind::string: return "string";
    case Kind::array: return "array";
    case Kind::object: return "object";
  }
  return "?";
}

/// One value of a parsed document. Indices are into Document's nodes; 0 (the root's, never a
/// child's) means none.
struct Node {
  Kind kind = Kind::null;
  Number number = Number::none;
  bool truth = false;          // a boolean's value
  std::uint32_t begin = 0;     // the value's text [begin, end): a string's without its quotes
  std::uint32_t end = 0;
  std::uint32_t key_begin = 0;  // an object member's key text, without its quotes
  std::uint32_t key_end = 0;
  std::uint32_t first = 0;  // an array's or object's first element or member
  std::uint32_t next = 0;   // the next element or member of the same parent
  std::uint32_t size = 0;   // an array's or object's number of elements or members
  std::uint64_t bits = 0;   // unsigned_int: the value; signed_int: the value's two's complement

  [[nodiscard]] bool is_unsigned() const { return number == Number::unsigned_int; }
  [[nodiscard]] bool is_integer() const {
    return number == Number::unsigned_int || number == Number::signed_int;
  }
  [[nodiscard]] std::int64_t as_signed() const { return static_cast<std::int64_t>(bits); }
};

/// The length of the well-formed UTF-8 sequence starting at s[p] (Unicode's table 3-7: no
/// overlong forms, no surrogates, nothing past U+10FFFF), or 0 where there is none.
[[nodiscard]] inline std::size_t utf8_sequence(std::string_view s, std::size_t p) {
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = at(p);
  if (c < 0x80) {
    return 1;
  }
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80;
    hi = c == 0xED ? 0x9F : 0xBF;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (p + len > s.size() || at(p + 1) < lo || at(p + 1) > hi) {
    return 0;
  }
  for (std::size_t i = 2; i < len; ++i) {
    if (at(p + i) < 0x80 || at(p + i) > 0xBF) {
      return 0;
    }
  }
  return len;
}

/// The code point of the well-formed sequence of `len` bytes at s[p].
[[nodiscard]] inline std::uint32_t utf8_decode(std::string_view s, std::size_t p, std::size_t len) {
  const auto at = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i]));
  };
  if (len == 1) {
    return at(p);
  }
  std::uint32_t cp = at(p) & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
  for (std::size_t i = 1; i < len; ++i) {
    cp = (cp << 6) | (at(p + i) & 0x3Fu);
  }
  return cp;
}

inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// `s` as a JSON string literal, quotes included: '"', '\\' and the control characters escaped
/// (\b \f \n \r \t, else \u00xx). ascii: every other character outside printable ASCII too, as
/// \uxxxx (surrogate pairs past U+FFFF), and bytes that are not well-formed UTF-8 as U+FFFD —
/// for error messages, which must print whatever a file holds. Without ascii, UTF-8 is copied
/// as is and nullopt returned where `s` is not well-formed UTF-8.
[[nodiscard]] inline std::optional<std::string> quote(std::string_view s, bool ascii) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  const auto escape_u = [&](std::uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) {
      out += hex[(unit >> shift) & 0xF];
    }
  };
  for (std::size_t p = 0; p < s.size();) {
    const auto c = static_cast<unsigned char>(s[p]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || (ascii && c == 0x7F)) {
            escape_u(c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++p;
      continue;
    }
    const std::size_t len = utf8_sequence(s, p);
    if (len == 0) {
      if (!ascii) {
        return std::nullopt;
      }
      escape_u(0xFFFD);
      ++p;
      continue;
    }
    if (!ascii) {
      out.append(s.substr(p, len));
    } else {
      const std::uint32_t cp = utf8_decode(s, p, len);
      if (cp < 0x10000) {
        escape_u(cp);
      } else {
        escape_u(0xD800 + ((cp - 0x10000) >> 10));
        escape_u(0xDC00 + ((cp - 0x10000) & 0x3FF));
      }
    }
    p += len;
  }
  out += '"';
  return out;
}

/// A parsed JSON text. It points into the text it was parsed from, which must outlive it.
class Document {
 public:
  /// Arrays and objects nested deeper than this are an error (the parser recurses).
  static constexpr int max_depth = 512;

  /// Parses `text`; on failure returns nullopt and sets `error` ("at byte B (line L, column C):
  /// what was found, what was expected").
  [[nodiscard]] static std::optional<Document> parse(std::string_view text, std::string& error) {
    Document doc;
    doc.text_ = text;
    if (text.size() >= 0xFFFFFFFFu) {
      error = "a JSON text of " + std::to_string(text.size()) + " bytes is too large";
      return std::nullopt;
    }
    Parser parser(text, doc.nodes_);
    std::uint32_t root = 0;
    if (parser.value(0, root)) {
      parser.space();
      if (parser.p < text.size()) {
        parser.fail(parser.found() + " after the JSON value; expected the end of the text");
      }
    }
    if (!parser.error.empty()) {
      error = parser.where() + ": " + parser.error;
      return std::nullopt;
    }
    return doc;
  }

  [[nodiscard]] const Node& root() const { return nodes_[0]; }
  [[nodiscard]] const Node& node(std::uint32_t i) const { return nodes_[i]; }

  /// Calls f(const Node&) for each element of an array or member of an object, in text order.
  template <class F>
  void for_each(const Node& parent, F&& f) const {
    for (std::uint32_t i = parent.first; i != 0; i = nodes_[i].next) {
      f(nodes_[i]);
    }
  }

  /// Element i of an array (i < size).
  [[nodiscard]] const Node& element(const Node& array, std::size_t i) const {
    std::uint32_t at = array.first;
    for (std::size_t k = 0; k < i; ++k) {
      at = nodes_[at].next;
    }
    return nodes_[at];
  }

  /// The last member of an object called `key` (the one a JSON library keeping one value a key
  /// would keep), or nullptr.
  [[nodiscard]] const Node* find(const Node& object, std::string_view key) const {
    const Node* found = nullptr;
    for_each(object, [&](const Node& m) {
      if (this->key(m) == key) {
        found = &m;
      }
    });
    return found;
  }

  /// A string's characters, escapes decoded.
  [[nodiscard]] std::string string(const Node& n) const { return decode(n.begin, n.end); }
  /// An object member's key, escapes decoded ("" for a node that is not a member: a member's
  /// key starts after its object's '{' and its own '"', at byte 2 or later).
  [[nodiscard]] std::string key(const Node& member) const {
    return member.key_begin == 0 ? std::string() : decode(member.key_begin, member.key_end);
  }
  /// A value's text as written (a number's literal).
  [[nodiscard]] std::string_view text(const Node& n) const {
    return text_.substr(n.begin, n.end - n.begin);
  }

 private:
  struct Parser {
    Parser(std::string_view text, std::vector<Node>& out) : s(text), nodes(out) {}

    std::string_view s;
    std::vector<Node>& nodes;
    std::size_t p = 0;
    std::string error;
    std::size_t error_at = 0;

    bool fail(std::string what) {
      if (error.empty()) {
        error = std::move(what);
        error_at = p;
      }
      return false;
    }
    [[nodiscard]] std::string where() const {
      std::size_t line = 1;
      std::size_t column = 1;
      for (std::size_t i = 0; i < error_at && i < s.size(); ++i) {
        if (s[i] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      return "at byte " + std::to_string(error_at) + " (line " + std::to_string(line) +
             ", column " + std::to_string(column) + ")";
    }
    /// What stands at p, for an error message.
    [[nodiscard]] std::string found() const {
      if (p >= s.size()) {
        return "the end of the text";
      }
      const auto c = static_cast<unsigned char>(s[p]);
      if (c >= 0x20 && c < 0x7F) {
        return std::string("'") + static_cast<char>(c) + "'";
      }
      static constexpr char hex[] = "0123456789abcdef";
      return std::string("byte 0x") + hex[c >> 4] + hex[c & 0xF];
    }
    void space() {
      while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) {
        ++p;
      }
    }
    [[nodiscard]] bool digit_at(std::size_t i) const {
      return i < s.size() && s[i] >= '0' && s[i] <= '9';
    }

    /// Parses one value into a new node (its index in `out`).
    bool value(int depth, std::uint32_t& out) {
      space();
      if (p >= s.size()) {
        return fail("the end of the text; expected a value");
      }
      out = static_cast<std::uint32_t>(nodes.size());
      nodes.emplace_back();
      nodes[out].begin = static_cast<std::uint32_t>(p);
      switch (s[p]) {
        case '{':
        case '[': return container(depth, out);
        case '"': {
          ++p;
          const std::size_t b = p;
          if (!string_body(nullptr)) {
            return false;
          }
          nodes[out].kind = Kind::string;
          nodes[out].begin = static_cast<std::uint32_t>(b);
          nodes[out].end = static_cast<std::uint32_t>(p - 1);
          return true;
        }
        case 't': return literal("true", Kind::boolean, true, out);
        case 'f': return literal("false", Kind::boolean, false, out);
        case 'n': return literal("null", Kind::null, false, out);
        default:
          if (s[p] == '-' || digit_at(p)) {
            return number(out);
          }
          return fail(found() + "; expected a value");
      }
    }

    bool literal(std::string_view word, Kind kind, bool truth, std::uint32_t self) {
      if (s.substr(p, word.size()) != word) {
        return fail(found() + "; expected a value (not a literal true, false or null)");
      }
      p += word.size();
      nodes[self].kind = kind;
      nodes[self].truth = truth;
      nodes[self].end = static_cast<std::uint32_t>(p);
      return true;
    }

    bool number(std::uint32_t self) {
      const std::size_t b = p;
      const bool negative = s[p] == '-';
      if (negative) {
        ++p;
      }
      const std::size_t digits = p;  // the first digit
      if (!digit_at(p)) {
        return fail(found() + " after '-'; expected a digit");
      }
      if (s[p] == '0') {
        ++p;
      } else {
        while (digit_at(p)) {
          ++p;
        }
      }
      const std::size_t int_end = p;
      const bool fraction = p < s.size() && s[p] == '.';
      bool integer = true;
      if (fraction) {
        ++p;
        if (!digit_at(p)) {
          return fail(found() + " after a decimal point; expected a digit");
        }
        while (digit_at(p)) {
          ++p;
        }
        integer = false;
      }
      long long exponent = 0;  // the exponent as written, clamped
      if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
        ++p;
        const bool down = p < s.size() && s[p] == '-';
        if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
          ++p;
        }
        if (!digit_at(p)) {
          return fail(found() + " in an exponent; expected a digit");
        }
        while (digit_at(p)) {
          exponent = std::min(exponent * 10 + (s[p] - '0'), 1'000'000'000LL);
          ++p;
        }
        exponent = down ? -exponent : exponent;
        integer = false;
      }
      Node& n = nodes[self];
      n.kind = Kind::number;
      n.end = static_cast<std::uint32_t>(p);
      n.number = Number::floating;
      if (integer) {
        std::uint64_t v = 0;
        bool fits = true;
        for (std::size_t i = digits; i < int_end && fits; ++i) {
          const auto d = static_cast<std::uint64_t>(s[i] - '0');
          fits = v <= (~std::uint64_t{0} - d) / 10;
          v = v * 10 + d;
        }
        constexpr std::uint64_t most_negative = std::uint64_t{1} << 63;  // |INT64_MIN|
        if (fits && !negative) {
          n.number = Number::unsigned_int;
          n.bits = v;
        } else if (fits && v <= most_negative) {
          n.number = Number::signed_int;
          n.bits = ~v + 1;  // -v in two's complement
        }
      }
      if (n.number == Number::floating) {
        double d = 0.0;
        if (std::from_chars(s.data() + b, s.data() + p, d).ec == std::errc::result_out_of_range) {
          // Past a double's range, or below its smallest denormal (which rounds to 0, as
          // strtod's does): the first nonzero digit's power of ten tells which.
          long long lead = static_cast<long long>(int_end - digits) - 1;
          if (s[digits] == '0') {  // 0.000d...
            lead = -1;
            for (std::size_t i = int_end + 1; fraction && i < p && s[i] == '0'; ++i) {
              --lead;
            }
          }
          if (lead + exponent > 0) {
            p = b;
            const std::string_view written = s.substr(b, n.end - b);
            return fail("the number " + std::string(written.substr(0, 40)) +
                        (written.size() > 40 ? "..." : "") + " is beyond a double's range");
          }
        }
      }
      return true;
    }

    /// The characters of a string after its opening quote, through the closing one: checked,
    /// and appended (escapes decoded) to `out` when it is not null.
    bool string_body(std::string* out) {
      for (;;) {
        if (p >= s.size()) {
          return fail("the end of the text inside a string; expected '\"'");
        }
        const auto c = static_cast<unsigned char>(s[p]);
        if (c == '"') {
          ++p;
          return true;
        }
        if (c < 0x20) {
          return fail(found() + " inside a string: control characters must be escaped");
        }
        if (c == '\\') {
          if (!escape(out)) {
            return false;
          }
          continue;
        }
        const std::size_t len = utf8_sequence(s, p);
        if (len == 0) {
          return fail(found() + " inside a string: not well-formed UTF-8");
        }
        if (out != nullptr) {
          out->append(s.substr(p, len));
        }
        p += len;
      }
    }

    bool hex4(std::uint32_t& unit) {
      unit = 0;
      for (int i = 0; i < 4; ++i, ++p) {
        if (p >= s.size()) {
          return fail("the end of the text in a \\u escape; expected 4 hexadecimal digits");
        }
        const char c = s[p];
        const int d = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
        if (d < 0) {
          return fail(found() + " in a \\u escape; expected 4 hexadecimal digits");
        }
        unit = unit * 16 + static_cast<std::uint32_t>(d);
      }
      return true;
    }

    bool escape(std::string* out) {
      ++p;  // the backslash
      if (p >= s.size()) {
        return fail("the end of the text after '\\' in a string");
      }
      const char e = s[p];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': break;
        default: return fail(found() + " after '\\' in a string; expected one of \"\\/bfnrtu");
      }
      if (e != 'u') {
        ++p;
        if (out != nullptr) {
          *out += plain;
        }
        return true;
      }
      ++p;
      std::uint32_t cp = 0;
      if (!hex4(cp)) {
        return false;
      }
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail("a \\u escape of a low surrogate with no high surrogate before it");
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s.substr(p, 2) != "\\u") {
          return fail("a \\u escape of a high surrogate not followed by a low surrogate's");
        }
        p += 2;
        std::uint32_t low = 0;
        if (!hex4(low)) {
          return false;
        }
        if (low < 0xDC00 || low > 0xDFFF) {
          return fail("a \\u escape of a high surrogate not followed by a low surrogate's");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      }
      if (out != nullptr) {
        append_utf8(*out, cp);
      }
      return true;
    }

    /// An array or object at p ('[' or '{'), its elements or members linked in text order.
    bool container(int depth, std::uint32_t self) {
      const bool object = s[p] == '{';
      const char close = object ? '}' : ']';
      if (depth >= max_depth) {
        return fail("arrays and objects nested deeper than " + std::to_string(max_depth));
      }
      ++p;
      nodes[self].kind = object ? Kind::object : Kind::array;
      space();
      if (p < s.size() && s[p] == close) {
        ++p;
        nodes[self].end = static_cast<std::uint32_t>(p);
        return true;
      }
      std::uint32_t prev = 0;
      for (;;) {
        std::uint32_t key_begin = 0;
        std::uint32_t key_end = 0;
        if (object) {
          space();
          if (p >= s.size() || s[p] != '"') {
            return fail(found() + "; expected '\"' (an object's key)");
          }
          ++p;
          key_begin = static_cast<std::uint32_t>(p);
          if (!string_body(nullptr)) {
            return false;
          }
          key_end = static_cast<std::uint32_t>(p - 1);
          space();
          if (p >= s.size() || s[p] != ':') {
            return fail(found() + " after an object's key; expected ':'");
          }
          ++p;
        }
        std::uint32_t child = 0;
        if (!value(depth + 1, child)) {
          return false;
        }
        nodes[child].key_begin = key_begin;
        nodes[child].key_end = key_end;
        (prev == 0 ? nodes[self].first : nodes[prev].next) = child;
        prev = child;
        ++nodes[self].size;
        space();
        if (p < s.size() && s[p] == ',') {
          ++p;
          continue;
        }
        if (p < s.size() && s[p] == close) {
          ++p;
          nodes[self].end = static_cast<std::uint32_t>(p);
          return true;
        }
        return fail(found() + (object ? "; expected ',' or '}'" : "; expected ',' or ']'"));
      }
    }
  };

  /// The text [b, e) of a checked string, escapes decoded.
  [[nodiscard]] std::string decode(std::uint32_t b, std::uint32_t e) const {
    const std::string_view raw = text_.substr(b, e - b);
    if (raw.find('\\') == std::string_view::npos) {
      return std::string(raw);  // no escapes: the text itself (checked when parsed)
    }
    std::string out;
    std::vector<Node> scratch;
    Parser parser(text_.substr(0, e + 1), scratch);
    parser.p = b;
    (void)parser.string_body(&out);  // checked when parsed: cannot fail
    return out;
  }

  std::string_view text_;
  std::vector<Node> nodes_;
};

}  // namespace strata::detail::json
