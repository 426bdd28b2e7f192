// torchvision's MobileNetV2 declared in the DSL: parameter count equal to PyTorch's, stage shapes,
// state_dict names, and fusion (ReLU6 into each conv, the residual add into the projection conv
// with nothing after it).
#include <strata/models/mobilenet_v2.hpp>

#include "label_checks.hpp"

using namespace strata;
using models::MobileNetV2;

// sum(p.numel() for p in torchvision.models.mobilenet_v2().parameters())
static_assert(MobileNetV2::param_count == 3504872);

// Stages: features, global_avg_pool, flatten, classifier.
static_assert(MobileNetV2::num_stages == 4);
static_assert(MobileNetV2::stage_output(0).shape == chw(1280, 7, 7));
static_assert(MobileNetV2::output_spec.shape == features(1000));

// 52 convs (no bias), 52 batch norms (5 tensors each), the classifier's weight and bias.
static_assert(MobileNetV2::graph.num_params == 52 + 52 * 5 + 2);
static_assert(MobileNetV2::graph.find_param("features.0.0.weight") == 0);
static_assert(MobileNetV2::graph.find_param("features.0.1.num_batches_tracked") == 5);
// features.1 (expand ratio 1): depthwise Conv2dNormActivation, projection conv, batch_norm.
static_assert(MobileNetV2::graph.find_param("features.1.conv.0.0.weight") == 6);
static_assert(MobileNetV2::graph.find_param("features.1.conv.1.weight") >= 0);
static_assert(MobileNetV2::graph.find_param("features.1.conv.2.running_var") >= 0);
static_assert(MobileNetV2::graph.find_param("features.1.conv.3.weight") == -1);
// The other blocks: expansion, depthwise, projection conv, batch_norm.
static_assert(MobileNetV2::graph.find_param("features.2.conv.0.0.weight") >= 0);
static_assert(MobileNetV2::graph.find_param("features.2.conv.1.0.weight") >= 0);
static_assert(MobileNetV2::graph.find_param("features.2.conv.2.weight") >= 0);
static_assert(MobileNetV2::graph.find_param("features.17.conv.3.running_mean") >= 0);
static_assert(MobileNetV2::graph.find_param("features.18.0.weight") >= 0);
static_assert(MobileNetV2::graph.find_param("features.18.1.bias") >= 0);
static_assert(MobileNetV2::graph.find_param("features.19.0.weight") == -1);
static_assert(MobileNetV2::graph.find_param("classifier.1.weight") >= 0);
static_assert(MobileNetV2::graph.find_param("classifier.1.bias") >= 0);

constexpr int find(std::string_view name) { return MobileNetV2::graph.find_param(name); }
constexpr const ParamSpec& spec(std::string_view name) {
  return MobileNetV2::graph.params[find(name)].spec;
}
// Shapes: the depthwise conv of features.2 (96 groups), the projection of features.17.
static_assert(spec("features.2.conv.1.0.weight").dims[0] == 96);
static_assert(spec("features.2.conv.1.0.weight").dims[1] == 1);
static_assert(spec("features.2.conv.1.0.weight").dims[2] == 3);
static_assert(spec("features.17.conv.2.weight").dims[0] == 320);
static_assert(spec("features.17.conv.2.weight").dims[1] == 960);
static_assert(spec("classifier.1.weight").dims[1] == 1280);

// Ops: the stem, 17 blocks (2 convs for features.1, 3 for the others), the last conv, the pool,
// the classifier (dropout and flatten are no ops).
static_assert(MobileNetV2::graph.num_ops == 1 + 2 + 16 * 3 + 1 + 1 + 1);
// Residual blocks (stride 1, in == out: features.3, 5, 6, 8–10, 12, 13, 15, 16) add into the
// projection conv, with no activation after the add.
constexpr int residual_adds() {
  int n = 0;
  for (int i = 0; i < MobileNetV2::graph.num_ops; ++i) {
    const Op& op = MobileNetV2::graph.ops[i];
    if (op.in2 >= 0) {
      n += op.kind == OpKind::conv && op.act.kind == Act::none && op.bn >= 0 ? 1 : 100;
    }
  }
  return n;
}
static_assert(residual_adds() == 10);
static_assert(MobileNetV2::graph.ops[0].label.view() == "features.0.conv0+bn1+clip2");
static_assert(MobileNetV2::graph.ops[8].label.view() == "features.3.conv.conv2+bn3+add");
static_assert(MobileNetV2::graph.ops[8].in2 == MobileNetV2::graph.ops[6].in);
static_assert(labels_unique<MobileNetV2>());

int main() {}
