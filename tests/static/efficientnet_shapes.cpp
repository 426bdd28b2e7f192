// torchvision's EfficientNet-B0 declared in the DSL: parameter count equal to PyTorch's, stage
// shapes, state_dict names (MBConv's `block`, SqueezeExcitation's fc1/fc2), and fusion (SiLU into
// each conv, the residual add into the projection conv with nothing after it).
#include <strata/models/efficientnet.hpp>

#include "label_checks.hpp"

using namespace strata;
using models::EfficientNetB0;

// sum(p.numel() for p in torchvision.models.efficientnet_b0().parameters())
static_assert(EfficientNetB0::param_count == 5288548);

// Stages: features, avgpool, flatten, classifier.
static_assert(EfficientNetB0::num_stages == 4);
static_assert(EfficientNetB0::stage_output(0).shape == chw(1280, 7, 7));
static_assert(EfficientNetB0::stage_output(1).shape == chw(1280, 1, 1));
static_assert(EfficientNetB0::output_spec.shape == features(1000));

constexpr int find(std::string_view name) { return EfficientNetB0::graph.find_param(name); }
constexpr const ParamSpec& spec(std::string_view name) {
  return EfficientNetB0::graph.params[find(name)].spec;
}

// 16 MBConv blocks: 15 with an expansion conv; convs: stem + 15 + 16·2 + head = 49 (no bias), each
// with a batch norm (5 tensors); 16 squeeze-excites (4 tensors); the classifier's 2.
static_assert(EfficientNetB0::graph.num_params == 49 + 49 * 5 + 16 * 4 + 2);
static_assert(find("features.0.0.weight") == 0);
static_assert(find("features.0.1.num_batches_tracked") == 5);
// features.1.0 (expand ratio 1): depthwise, squeeze-excite, projection.
static_assert(find("features.1.0.block.0.0.weight") == 6);
static_assert(find("features.1.0.block.1.fc1.weight") >= 0);
static_assert(find("features.1.0.block.2.1.running_var") >= 0);
static_assert(find("features.1.0.block.3.0.weight") == -1);
// The others: expansion, depthwise, squeeze-excite, projection; stages are nn.Sequentials.
static_assert(find("features.2.1.block.0.0.weight") >= 0);
static_assert(find("features.2.1.block.2.fc2.bias") >= 0);
static_assert(find("features.6.3.block.3.1.running_mean") >= 0);
static_assert(find("features.6.4.block.0.0.weight") == -1);
static_assert(find("features.7.0.block.3.0.weight") >= 0);
static_assert(find("features.8.0.weight") >= 0);
static_assert(find("features.8.1.bias") >= 0);
static_assert(find("classifier.1.weight") >= 0 && find("classifier.1.bias") >= 0);

// Shapes: 5×5 depthwise of features.3.0 (144 channels), its squeeze to 24 / 4 = 6.
static_assert(spec("features.3.0.block.1.0.weight").dims[0] == 144);
static_assert(spec("features.3.0.block.1.0.weight").dims[1] == 1);
static_assert(spec("features.3.0.block.1.0.weight").dims[2] == 5);
static_assert(spec("features.3.0.block.2.fc1.weight").dims[0] == 6);
static_assert(spec("features.3.0.block.2.fc1.weight").dims[1] == 144);
static_assert(spec("features.3.1.block.2.fc1.weight").dims[0] == 10);
static_assert(spec("features.8.0.weight").dims[0] == 1280);
static_assert(spec("features.8.0.weight").dims[1] == 320);

// Ops per block: [expansion], depthwise, avgpool, fc1+silu, fc2+sigmoid, the product,
// projection (+ add); the stem, the head conv, avgpool and the classifier.
static_assert(EfficientNetB0::graph.num_ops == 1 + 6 + 15 * 7 + 1 + 1 + 1);
constexpr int residual_adds() {
  int n = 0;
  for (int i = 0; i < EfficientNetB0::graph.num_ops; ++i) {
    const Op& op = EfficientNetB0::graph.ops[i];
    if (op.in2 >= 0 && op.kind != OpKind::multiply) {
      n += op.kind == OpKind::conv && op.act.kind == Act::none && op.bn >= 0 ? 1 : 100;
    }
  }
  return n;
}
// Stages of 2, 2, 3, 3, 4 blocks: 1 + 1 + 2 + 2 + 3 residual blocks.
static_assert(residual_adds() == 9);
static_assert(EfficientNetB0::graph.ops[0].label.view() == "features.0.conv0+bn1+silu2");
static_assert(EfficientNetB0::graph.ops[3].act.kind == Act::silu);
static_assert(EfficientNetB0::graph.ops[4].act.kind == Act::sigmoid);
static_assert(EfficientNetB0::graph.ops[5].kind == OpKind::multiply);
static_assert(EfficientNetB0::graph.ops[20].label.view() == "features.2.1.block.3.conv0+bn1+add");
static_assert(EfficientNetB0::graph.ops[20].in2 == EfficientNetB0::graph.ops[14].in);
static_assert(labels_unique<EfficientNetB0>());

int main() {}
