// strata/weights/json.hpp, the JSON reader of safetensors headers: hand-worked cases, and the
// same texts (and random mutations of them) against nlohmann::json as an independent reference
// for what is valid JSON and what it holds.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "strata/weights/json.hpp"

namespace {

namespace sj = strata::detail::json;

std::optional<sj::Document> parse(std::string_view text, std::string* error = nullptr) {
  std::string e;
  std::optional<sj::Document> d = sj::Document::parse(text, e);
  CHECK(d.has_value() == e.empty());
  if (error != nullptr) {
    *error = e;
  }
  return d;
}

bool accepted(std::string_view text) { return parse(text).has_value(); }

/// Whether a Strata node holds what an nlohmann value holds: kinds, integers, strings, keys in
/// order (nlohmann sorts its keys, so members are compared by lookup; texts with repeated keys
/// are not compared).
bool same(const sj::Document& d, const sj::Node& n, const nlohmann::json& j) {
  switch (n.kind) {
    case sj::Kind::null: return j.is_null();
    case sj::Kind::boolean: return j.is_boolean() && j.get<bool>() == n.truth;
    case sj::Kind::string: return j.is_string() && j.get<std::string>() == d.string(n);
    case sj::Kind::number:
      if (n.number == sj::Number::unsigned_int) {
        return j.is_number_unsigned() && j.get<std::uint64_t>() == n.bits;
      }
      if (n.number == sj::Number::signed_int) {
        return j.is_number_integer() && !j.is_number_unsigned() &&
               j.get<std::int64_t>() == n.as_signed();
      }
      return j.is_number_float();
    case sj::Kind::array: {
      if (!j.is_array() || j.size() != n.size) {
        return false;
      }
      bool ok = true;
      std::size_t i = 0;
      d.for_each(n, [&](const sj::Node& e) { ok = ok && same(d, e, j[i++]); });
      return ok;
    }
    case sj::Kind::object: {
      if (!j.is_object()) {
        return false;
      }
      bool ok = true;
      d.for_each(n, [&](const sj::Node& m) {
        const auto it = j.find(d.key(m));
        ok = ok && it != j.end() && same(d, m, *it);
      });
      return ok && j.size() == n.size;
    }
  }
  return false;
}

const std::vector<std::string> valid_texts = {
    "{}", "[]", " \t\r\n{ } ", "0", "-0", "1.5", "-1.5e-3", "1E+2", "123456789",
    "18446744073709551615", "18446744073709551616", "-9223372036854775808",
    "-9223372036854775809", "true", "false", "null", "\"\"", R"("a\"b\\c\/d\b\f\n\r\t")",
    R"("\u00e9\u4e2d\ud83d\ude00")", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"",
    R"({"a": [1, {"b": null}], "c": "x"})", R"([[[[]]], {}, [{}], ""])",
    R"({"fc.weight": {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"( "__metadata__": {"format":"pt"}})",
};

const std::vector<std::string> invalid_texts = {
    "", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{a:1}", "{'a':1}", "{\"a\" 1}",
    "{\"a\":}", "[1 2]", "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "NaN",
    "Infinity", "-Infinity", "tru", "nul", "falsey", "[true false]", "\"abc", "\"a\nb\"",
    "\"a\tb\"", R"("\x")", R"("\u12")", R"("\u12G4")", R"("\ud800")", R"("\udc00")",
    R"("\ud800\u0041")", R"("\ud800x")", "\"\xc0\x80\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"",
    "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xc3\"", "\"\x80\"", "\"\xff\"",
    "{} trailing", "[1] [2]", "{\"a\":1}}", "1e309", "-2e308", "[1.8e308]", "1e999999999999",
};

}  // namespace

TEST_CASE("json: valid texts are read as nlohmann::json reads them") {
  for (const std::string& text : valid_texts) {
    INFO("text: " << text);
    const auto d = parse(text);
    REQUIRE(d.has_value());
    CHECK(nlohmann::json::accept(text));
    CHECK(same(*d, d->root(), nlohmann::json::parse(text)));
  }
}

TEST_CASE("json: invalid texts are rejected, as nlohmann::json rejects them") {
  for (const std::string& text : invalid_texts) {
    INFO("text: " << text);
    std::string error;
    CHECK_FALSE(parse(text, &error).has_value());
    CHECK(error.rfind("at byte ", 0) == 0);
    CHECK_FALSE(nlohmann::json::accept(text));
  }
}

TEST_CASE("json: stricter than nlohmann::json where safetensors' reference reader is") {
  // nlohmann::json ends its input at a NUL byte and skips a byte-order mark; serde_json (the
  // safetensors reference) and Strata read neither as JSON.
  CHECK(nlohmann::json::accept(std::string("[1]\0", 4)));
  CHECK_FALSE(accepted(std::string("[1]\0", 4)));
  CHECK(nlohmann::json::accept("\xef\xbb\xbf{}"));
  CHECK_FALSE(accepted("\xef\xbb\xbf{}"));
}

TEST_CASE("json: numbers as nlohmann::json classifies them") {
  const auto n = [](std::string_view t) { return parse(t)->root(); };
  CHECK(n("18446744073709551615").number == sj::Number::unsigned_int);
  CHECK(n("18446744073709551615").bits == 18446744073709551615ull);
  CHECK(n("18446744073709551616").number == sj::Number::floating);  // past 64 bits
  CHECK(n("-9223372036854775808").number == sj::Number::signed_int);
  CHECK(n("-9223372036854775808").as_signed() == INT64_MIN);
  CHECK(n("-9223372036854775809").number == sj::Number::floating);
  CHECK(n("-0").number == sj::Number::signed_int);
  CHECK(n("-0").as_signed() == 0);
  CHECK(n("-3").as_signed() == -3);
  CHECK(n("7").is_unsigned());
  CHECK(n("7.0").number == sj::Number::floating);
  CHECK(n("7e0").number == sj::Number::floating);
  CHECK(n("1e-400").number == sj::Number::floating);  // below the least denormal: 0, accepted
  CHECK(n("0.000001e-320").number == sj::Number::floating);
  CHECK(n("0e999999").number == sj::Number::floating);
  CHECK(n("1.7976931348623157e308").number == sj::Number::floating);  // the largest double
  CHECK_FALSE(accepted("0.00001e314"));                               // 1e309
  const auto d = parse("[2.50]");
  CHECK(d->text(d->element(d->root(), 0)) == "2.50");  // a number's text as written
}

TEST_CASE("json: members keep their order and repeats; find returns the last") {
  const auto d = parse(R"({"b": 1, "a": 2, "b": 3, "c\u0041": 4})");
  REQUIRE(d.has_value());
  std::vector<std::string> keys;
  d->for_each(d->root(), [&](const sj::Node& m) { keys.push_back(d->key(m)); });
  CHECK(keys == std::vector<std::string>{"b", "a", "b", "cA"});
  CHECK(d->root().size == 4);
  CHECK(d->find(d->root(), "b")->bits == 3);
  CHECK(d->find(d->root(), "cA")->bits == 4);
  CHECK(d->find(d->root(), "z") == nullptr);
}

TEST_CASE("json: key() of a node that is not an object's member is empty") {
  const auto d = parse(R"(["x", {"": 1}])");
  REQUIRE(d.has_value());
  CHECK(d->key(d->root()).empty());
  CHECK(d->key(d->element(d->root(), 1)).empty());
  const sj::Node& member = d->element(d->element(d->root(), 1), 0);
  CHECK(member.key_begin > 0);  // the empty key "" of a member
  CHECK(d->key(member).empty());
}

TEST_CASE("json: a number beyond a double's range is named, cut to 40 digits") {
  std::string error;
  CHECK_FALSE(parse("[1" + std::string(400, '0') + "]", &error).has_value());
  CHECK(error.find("the number 1" + std::string(39, '0') + "... is beyond a double's range") !=
        std::string::npos);
}

TEST_CASE("json: strings decode their escapes to UTF-8") {
  const auto d = parse(R"(["\u00e9", "\ud83d\ude00", "a\\b\"c", "\u0000"])");
  REQUIRE(d.has_value());
  CHECK(d->string(d->element(d->root(), 0)) == "\xc3\xa9");
  CHECK(d->string(d->element(d->root(), 1)) == "\xf0\x9f\x98\x80");
  CHECK(d->string(d->element(d->root(), 2)) == "a\\b\"c");
  CHECK(d->string(d->element(d->root(), 3)) == std::string("\0", 1));
}

TEST_CASE("json: nesting deeper than max_depth is an error, not a stack overflow") {
  const int limit = sj::Document::max_depth;
  const std::string ok = std::string(static_cast<std::size_t>(limit), '[') +
                         std::string(static_cast<std::size_t>(limit), ']');
  CHECK(accepted(ok));
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string error;
  CHECK_FALSE(parse(deep, &error).has_value());
  CHECK(error.find("nested deeper than 512") != std::string::npos);
}

TEST_CASE("json: an error names byte, line and column") {
  std::string error;
  CHECK_FALSE(parse("{\n  \"a\": tru\n}", &error).has_value());
  CHECK(error.rfind("at byte 9 (line 2, column 8): ", 0) == 0);
  CHECK_FALSE(parse("[1, 2", &error).has_value());
  CHECK(error.find("the end of the text") != std::string::npos);
}

TEST_CASE("json: quote escapes as nlohmann::json dumps") {
  const std::vector<std::string> texts = {"", "plain", "q\"b\\", "\b\f\n\r\t\x01\x1f\x7f",
                                          "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"};
  for (const std::string& s : texts) {
    INFO("string: " << s);
    CHECK(*sj::quote(s, false) == nlohmann::json(s).dump());
    CHECK(*sj::quote(s, true) == nlohmann::json(s).dump(-1, ' ', true));
  }
  CHECK_FALSE(sj::quote("bad\xff", false).has_value());
  CHECK(*sj::quote("bad\xff", true) == "\"bad\\ufffd\"");
  CHECK(*sj::quote("\xed\xa0\x80", true) == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate's bytes
}

TEST_CASE("json: random mutations are accepted and read exactly as nlohmann::json does") {
  // Each seed text mutated by inserting, deleting or replacing bytes drawn from JSON's
  // punctuation, digits, letters, escapes and a few non-ASCII bytes; a deterministic generator.
  std::mt19937 rng(20261205);
  const std::string alphabet = "{}[]:,\"\\ -+.eE0123456789tfnrulsaxu\x7f\xc3\xa9\xed\xa0\xf0\x9f";
  int agreed_valid = 0;
  int agreed_invalid = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = valid_texts[rng() % valid_texts.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: text.insert(at, 1, c); break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = c;
      }
    }
    INFO("text: " << text);
    const auto d = parse(text);
    const bool reference = nlohmann::json::accept(text);
    REQUIRE(d.has_value() == reference);
    if (d) {
      ++agreed_valid;
      bool repeats = false;  // nlohmann keeps one value a key: compare only texts without repeats
      std::vector<const sj::Node*> stack{&d->root()};
      while (!stack.empty() && !repeats) {
        const sj::Node* n = stack.back();
        stack.pop_back();
        std::vector<std::string> keys;
        d->for_each(*n, [&](const sj::Node& m) {
          if (n->kind == sj::Kind::object) {
            keys.push_back(d->key(m));
          }
          stack.push_back(&m);
        });
        std::sort(keys.begin(), keys.end());
        repeats = std::adjacent_find(keys.begin(), keys.end()) != keys.end();
      }
      if (!repeats) {
        CHECK(same(*d, d->root(), nlohmann::json::parse(text)));
      }
    } else {
      ++agreed_invalid;
    }
  }
  // Both outcomes were exercised many times.
  CHECK(agreed_valid > 1000);
  CHECK(agreed_invalid > 1000);
}
