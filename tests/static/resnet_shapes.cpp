// torchvision's ResNet-18 and ResNet-50 declared in the DSL: parameter counts equal PyTorch's,
// stage shapes, state_dict names, fusion and the memory plan of residual blocks.
#include <algorithm>

#include <strata/models/resnet.hpp>

#include "label_checks.hpp"

using namespace strata;
using models::ResNet18;
using models::ResNet50;

// sum(p.numel() for p in torchvision.models.resnetXX().parameters())
static_assert(ResNet18::param_count == 11689512);
static_assert(ResNet50::param_count == 25557032);

// Stages: conv1, bn1, relu, maxpool, layer1..4, avgpool, flatten, fc.
static_assert(ResNet18::num_stages == 11);
static_assert(ResNet18::stage_output(0).shape == chw(64, 112, 112));
static_assert(ResNet18::stage_output(3).shape == chw(64, 56, 56));
static_assert(ResNet18::stage_output(4).shape == chw(64, 56, 56));
static_assert(ResNet18::stage_output(5).shape == chw(128, 28, 28));
static_assert(ResNet18::stage_output(6).shape == chw(256, 14, 14));
static_assert(ResNet18::stage_output(7).shape == chw(512, 7, 7));
static_assert(ResNet18::stage_output(8).shape == chw(512, 1, 1));
static_assert(ResNet18::stage_output(9).shape == features(512));
static_assert(ResNet18::output_spec.shape == features(1000));
static_assert(ResNet50::stage_output(4).shape == chw(256, 56, 56));
static_assert(ResNet50::stage_output(5).shape == chw(512, 28, 28));
static_assert(ResNet50::stage_output(6).shape == chw(1024, 14, 14));
static_assert(ResNet50::stage_output(7).shape == chw(2048, 7, 7));
static_assert(ResNet50::output_spec.shape == features(1000));

// torchvision's state_dict names.
static_assert(ResNet18::graph.find_param("conv1.weight") == 0);
static_assert(ResNet18::graph.find_param("bn1.num_batches_tracked") == 5);
static_assert(ResNet18::graph.find_param("layer1.0.conv1.weight") >= 0);
static_assert(ResNet18::graph.find_param("layer1.1.bn2.running_var") >= 0);
static_assert(ResNet18::graph.find_param("layer2.0.downsample.0.weight") >= 0);
static_assert(ResNet18::graph.find_param("layer2.0.downsample.1.running_mean") >= 0);
static_assert(ResNet18::graph.find_param("layer1.0.downsample.0.weight") == -1);
static_assert(ResNet18::graph.find_param("fc.weight") >= 0 && ResNet18::graph.find_param("fc.bias") >= 0);
static_assert(ResNet50::graph.find_param("layer4.2.conv3.weight") >= 0);
static_assert(ResNet50::graph.find_param("layer1.0.downsample.0.weight") >= 0);
// 62 weight/bias-bearing tensors + BN buffers: conv 20 + bn 20 (5 each) + fc 2 in ResNet-18.
static_assert(ResNet18::graph.num_params == 20 + 20 * 5 + 2);

// FLOPs per image: ≈3.64 G (ResNet-18) and ≈8.2 G (ResNet-50), 2 per multiply-add.
static_assert(ResNet18::flops > 3'600'000'000 && ResNet18::flops < 3'700'000'000);
static_assert(ResNet50::flops > 8'100'000'000 && ResNet50::flops < 8'300'000'000);

// Fusion: every conv's batch_norm is folded in, the residual add and relu join the block's last
// conv; the downsample branch is one op.
static_assert(ResNet18::graph.num_ops == 23);
static_assert(ResNet18::graph.ops[3].in2 == ResNet18::graph.ops[2].in);  // identity shortcut
static_assert(ResNet18::graph.ops[8].in2 == ResNet18::graph.ops[6].out);  // projection shortcut
static_assert(ResNet50::graph.num_ops == 2 + 16 * 3 + 4 + 2);

// Labels: torchvision's names as given, fused parts relative to the first; the unnamed relu fused
// into a named conv by its kind; the unnamed children of the named downsample by kind and position.
static_assert(ResNet18::graph.ops[0].label.view() == "conv1+bn1+relu");
static_assert(ResNet18::graph.ops[1].label.view() == "maxpool");
static_assert(ResNet18::graph.ops[2].label.view() == "layer1.0.conv1+bn1+relu");
static_assert(ResNet18::graph.ops[3].label.view() == "layer1.0.conv2+bn2+add+relu");
static_assert(ResNet18::graph.ops[4].label.view() == "layer1.1.conv1+bn1+relu");
static_assert(ResNet18::graph.ops[5].label.view() == "layer1.1.conv2+bn2+add+relu");
static_assert(ResNet18::graph.ops[6].label.view() == "layer2.0.downsample.conv0+bn1");
static_assert(ResNet18::graph.ops[7].label.view() == "layer2.0.conv1+bn1+relu");
static_assert(ResNet18::graph.ops[21].label.view() == "avgpool");
static_assert(ResNet18::graph.ops[22].label.view() == "fc");
static_assert(ResNet50::graph.ops[2].label.view() == "layer1.0.downsample.conv0+bn1");
static_assert(ResNet50::graph.ops[4].label.view() == "layer1.0.conv2+bn2+relu");
static_assert(ResNet50::graph.ops[53].label.view() == "layer4.2.conv3+bn3+add+relu");

// Every op's label is unique (profiles are keyed by it), and the longest fits a Name with room.
template <class Net>
constexpr int longest_label() {
  int n = 0;
  for (int i = 0; i < Net::graph.num_ops; ++i) {
    n = std::max(n, Net::graph.ops[i].label.size);
  }
  return n;
}
static_assert(labels_unique<ResNet18>() && labels_unique<ResNet50>());
static_assert(labels_unique<decltype(input<1, 28, 28> | max_pool<2> | relu | max_pool<2> | relu)>());
static_assert(longest_label<ResNet50>() == 29);  // "layer1.0.downsample.conv0+bn1"
static_assert(longest_label<ResNet50>() * 3 < Name::capacity);

// The plan of residual networks: no live overlap; the skip tensor stays live until the add.
template <class Net>
constexpr bool plan_is_sound() {
  constexpr auto& g = Net::graph;
  constexpr auto& p = Net::plan;
  for (int a = 0; a < g.num_tensors; ++a) {
    for (int b = a + 1; b < g.num_tensors; ++b) {
      if (p.live_together(a, b) && p.overlap(a, b)) {
        return false;
      }
    }
  }
  for (int i = 0; i < g.num_ops; ++i) {
    if (g.ops[i].in2 >= 0 && p.tensors[g.ops[i].in2].last != i) {
      return false;
    }
  }
  return p.activation_bytes >= p.peak_bytes;
}
static_assert(plan_is_sound<ResNet18>());
static_assert(plan_is_sound<ResNet50>());
static_assert(ResNet18::plan.activation_bytes == ResNet18::plan.peak_bytes);
// A block right at the network input: the input is the skip tensor, live across both convs.
using InputBlock = decltype(input<16, 8, 8> | models::basic_block<16, 1, false>());
static_assert(plan_is_sound<InputBlock>());
static_assert(InputBlock::plan.tensors[InputBlock::graph.input].last == 1);
static_assert(InputBlock::plan.activation_bytes == 3 * 16 * 8 * 8 * 4);
static_assert(ResNet50::plan.activation_bytes == ResNet50::plan.peak_bytes);
// The first block: its input (conv1's pooled output) is live through both of the block's convs.
static_assert(ResNet18::plan.tensors[ResNet18::graph.ops[2].in].last == 3);

int main() {}
