#pragma once
/// FixedString: a string usable as a template argument (layer and scope names), and Name,
/// a bounded constexpr string builder for parameter names such as "layer1.0.conv1.weight".
#include <cstddef>
#include <string_view>

namespace strata {

/// A string literal as a structural value, so `named<"conv1">` can carry it in a type.
template <std::size_t N>
struct FixedString {
  char data[N]{};
  constexpr FixedString(const char (&s)[N]) {  // NOLINT: implicit from a literal
    for (std::size_t i = 0; i < N; ++i) {
      data[i] = s[i];
    }
  }
  [[nodiscard]] constexpr std::string_view view() const { return {data, N - 1}; }
};

namespace detail {
constexpr std::size_t decimal_digits(int v) { return v < 10 ? 1 : 1 + decimal_digits(v / 10); }
}  // namespace detail

/// `S` followed by the decimal digits of `I` (≥ 0): `numbered<"denselayer", 3>` is "denselayer3",
/// for modules that PyTorch code names in a loop ("denselayer%d" % (i + 1)).
template <FixedString S, int I>
inline constexpr auto numbered = [] {
  static_assert(I >= 0, "numbered: the number must not be negative");
  constexpr std::size_t prefix = S.view().size();
  constexpr std::size_t digits = detail::decimal_digits(I < 0 ? 0 : I);
  char text[prefix + digits + 1]{};
  for (std::size_t i = 0; i < prefix; ++i) {
    text[i] = S.data[i];
  }
  for (std::size_t i = 0, v = static_cast<std::size_t>(I < 0 ? 0 : I); i < digits; ++i, v /= 10) {
    text[prefix + digits - 1 - i] = static_cast<char>('0' + v % 10);
  }
  return FixedString<prefix + digits + 1>(text);
}();

/// A bounded string built at compile time: parameter names and op labels. Longer ones are a
/// compile error, never cut short (the capacity is generous: torchvision's longest parameter name
/// is 35 characters, ResNet-50's longest op label 29).
struct Name {
  static constexpr int capacity = 96;
  char data[capacity]{};
  int size = 0;

  constexpr Name() = default;
  constexpr Name(std::string_view s) { append(s); }  // NOLINT: implicit from a view

  constexpr Name& append(std::string_view s) {
    if (size + static_cast<int>(s.size()) >= capacity) {
      // Not a constant expression, so the compiler stops here and shows this line.
      throw "strata::Name: a parameter name or op label longer than 95 characters";
    }
    // One statement per character: compilers count constexpr evaluation steps (clang stops at
    // 1,048,576 by default), and a big network's names are built a character at a time.
    for (char ch : s) {
      data[size++] = ch;
    }
    return *this;
  }
  constexpr Name& append_int(int v) {
    char buf[12]{};
    int n = 0;
    if (v == 0) {
      buf[n++] = '0';
    }
    while (v > 0) {
      buf[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    while (n > 0) {
      const char ch[1] = {buf[--n]};
      append(std::string_view(ch, 1));
    }
    return *this;
  }
  /// "prefix" + "." + part, or part alone when the prefix is empty.
  [[nodiscard]] constexpr Name dot(std::string_view part) const {
    Name r = *this;
    if (r.size > 0 && !part.empty()) {
      r.append(".");
    }
    r.append(part);
    return r;
  }
  [[nodiscard]] constexpr Name dot(int index) const {
    Name r = *this;
    if (r.size > 0) {
      r.append(".");
    }
    r.append_int(index);
    return r;
  }
  [[nodiscard]] constexpr std::string_view view() const { return {data, static_cast<std::size_t>(size)}; }
  [[nodiscard]] constexpr bool empty() const { return size == 0; }
};

}  // namespace strata
