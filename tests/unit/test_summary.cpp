// summary(): the layer table and the fused-op list, their content and their columns, which must
// line up for any index, shape and name (ResNet-50's longest included).
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include <strata/models/mnist_cnn.hpp>
#include <strata/models/resnet.hpp>
#include <strata/strata.hpp>

using namespace strata;

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream is(s);
  for (std::string line; std::getline(is, line);) {
    lines.push_back(line);
  }
  return lines;
}

std::string trimmed(const std::string& s) {
  const auto a = s.find_first_not_of(' ');
  const auto b = s.find_last_not_of(' ');
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

/// Checks that every column of both tables starts (left-aligned columns) or ends (right-aligned
/// ones) where its header does, and that the cells hold what the graph says.
template <class Net>
void check_summary_columns() {
  std::ostringstream os;
  Net::summary(os);
  const std::vector<std::string> lines = lines_of(os.str());
  constexpr auto& g = Net::graph;
  INFO(os.str());

  // The layer table: header, rule, input, one row per declared node, rule.
  REQUIRE(lines.size() >= static_cast<std::size_t>(g.num_rows + 4));
  const std::string& header = lines[0];
  REQUIRE(header.rfind("Layer", 0) == 0);
  const auto type_col = header.find("Type");
  const auto shape_col = header.find("Output shape");
  const auto params_end = header.find("Params") + 6;
  REQUIRE(type_col != std::string::npos);
  REQUIRE(shape_col != std::string::npos);
  CHECK(lines[1] == std::string(header.size(), '='));
  CHECK(lines[static_cast<std::size_t>(g.num_rows) + 3] == std::string(header.size(), '='));
  for (int i = -1; i < g.num_rows; ++i) {
    const std::string& line = lines[static_cast<std::size_t>(i + 3)];
    CAPTURE(line);
    // Right-aligned numbers end where their headers do; the shape starts where its header does.
    CHECK(line.size() == header.size());
    CHECK(line[params_end - 1] != ' ');
    CHECK(line.substr(shape_col - 2, 3).find_first_not_of(' ') == 2);
    const std::string name = i < 0 ? "input" : std::string(g.rows[i].name.view());
    const TensorSpec out = i < 0 ? Net::input_spec : g.rows[i].out;
    CHECK(trimmed(line.substr(0, type_col)) == name);
    CHECK(line.substr(shape_col, shape_string(out.shape).size()) == shape_string(out.shape));
    if (i >= 0) {
      CHECK(line[type_col - 1] == ' ');
      CHECK(line[type_col] != ' ');
      CHECK(line.substr(type_col - 2, 2) == "  ");
    }
  }

  // The fused ops: "Fused ops (N):", a header, one row per op.
  std::size_t at = static_cast<std::size_t>(g.num_rows) + 4;
  while (at < lines.size() && lines[at].rfind("Fused ops (", 0) != 0) {
    ++at;
  }
  REQUIRE(at + 1 + static_cast<std::size_t>(g.num_ops) < lines.size() + 1);
  CHECK(lines[at] == "Fused ops (" + std::to_string(g.num_ops) + "):");
  const std::string& op_header = lines[at + 1];
  const auto index_end = op_header.find('#') + 1;
  const auto label_col = op_header.find("Op");
  const auto op_shape_col = op_header.find("Output shape");
  REQUIRE(op_shape_col != std::string::npos);
  for (int i = 0; i < g.num_ops; ++i) {
    const std::string& line = lines[at + 2 + static_cast<std::size_t>(i)];
    CAPTURE(line);
    const std::string index = std::to_string(i);
    CHECK(line.size() == op_header.size());
    CHECK(line.substr(index_end - index.size(), index.size()) == index);
    CHECK(line[index_end - index.size() - 1] == ' ');
    CHECK(trimmed(line.substr(label_col, op_shape_col - label_col)) == g.ops[i].label.view());
    CHECK(line.substr(label_col - 2, 2) == "  ");
    CHECK(line.substr(op_shape_col - 2, 2) == "  ");
    CHECK(line.substr(op_shape_col, 1) == "(");
  }
}

}  // namespace

TEST_CASE("summary() lists every layer with its shape, and the fused ops") {
  std::ostringstream os;
  models::ResNet18::summary(os);
  const std::string s = os.str();
  CHECK(s.find("layer2.0.downsample.0") != std::string::npos);
  CHECK(s.find("(128, 28, 28)") != std::string::npos);
  CHECK(s.find("Parameters:            11689512") != std::string::npos);
  CHECK(s.find("layer1.0.conv2+bn2+add+relu") != std::string::npos);
  CHECK(s.find("layer2.0.downsample.conv0+bn1") != std::string::npos);
  bool fc_row = false;
  for (const std::string& line : lines_of(s)) {
    fc_row = fc_row ||
             (line.rfind("fc ", 0) == 0 && line.find(" dense -> 1000 ") != std::string::npos);
  }
  CHECK(fc_row);
}

TEST_CASE("summary(): the MNIST CNN's fused ops by their readable labels") {
  std::ostringstream os;
  models::MnistCnn::summary(os);
  const std::string s = os.str();
  for (const char* label : {"conv0+bn1+relu2", "max_pool3", "conv4+bn5+relu6", "max_pool7",
                            "dense9+relu10", "dense11", "softmax12"}) {
    CHECK(s.find(std::string("  ") + label + "  ") != std::string::npos);
  }
}

TEST_CASE("summary(): columns line up for indices past 9 and for long names") {
  SUBCASE("MNIST CNN: 13 layers, two-digit positions") {
    check_summary_columns<models::MnistCnn>();
  }
  SUBCASE("ResNet-18") { check_summary_columns<models::ResNet18>(); }
  SUBCASE("ResNet-50: 56 ops, names up to 29 characters") {
    check_summary_columns<models::ResNet50>();
  }
  SUBCASE("nested unnamed chains, wide shapes") {
    using Net = decltype(input<3, 100, 100> | conv<8, 3> | batch_norm | relu |
                         residual<relu>(conv<8, 3, ConvOpts{.padding = 1}> | batch_norm | relu |
                                        conv<8, 3, ConvOpts{.padding = 1}> | batch_norm) |
                         max_pool<2> | conv<1024, 1> | relu | max_pool<2> | conv<16, 1> | relu |
                         flatten | dense<12> | relu | dense<11> | relu | dense<10> | softmax);
    check_summary_columns<Net>();
  }
}
