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
    for (char ch : s) {
      if (size + 1 >= capacity) {
        // Not a constant expression, so the compiler stops here and shows this line.
        throw "strata::Name: a parameter name or op label longer than 95 characters";
      }
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
