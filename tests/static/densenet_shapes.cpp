// torchvision's DenseNet-121 declared in the DSL: parameter count equal to PyTorch's, the growing
// concatenation's shapes, state_dict names, and how a dense layer lowers (its new channels written
// straight into their slice of the block's output, the input copied into the rest).
#include <strata/models/densenet.hpp>

using namespace strata;
using models::DenseNet121;

// sum(p.numel() for p in torchvision.models.densenet121().parameters())
static_assert(DenseNet121::param_count == 7978856);

// Stages: features, relu, global_avg_pool, flatten, classifier.
static_assert(DenseNet121::num_stages == 5);
static_assert(DenseNet121::stage_output(0).shape == chw(1024, 7, 7));
static_assert(DenseNet121::output_spec.shape == features(1000));

// Inside features: each dense block adds layers · 32 channels, each transition halves them.
constexpr TensorSpec row_out(std::string_view name) {
  for (int r = 0; r < DenseNet121::graph.num_rows; ++r) {
    if (DenseNet121::graph.rows[r].name.view() == name) {
      return DenseNet121::graph.rows[r].out;
    }
  }
  return {};
}
static_assert(row_out("features.pool0").shape == chw(64, 56, 56));
static_assert(row_out("features.denseblock1.denselayer1").shape == chw(96, 56, 56));
static_assert(row_out("features.denseblock1").shape == chw(256, 56, 56));
static_assert(row_out("features.transition1").shape == chw(128, 28, 28));
static_assert(row_out("features.denseblock2").shape == chw(512, 28, 28));
static_assert(row_out("features.transition2").shape == chw(256, 14, 14));
static_assert(row_out("features.denseblock3").shape == chw(1024, 14, 14));
static_assert(row_out("features.transition3").shape == chw(512, 7, 7));
static_assert(row_out("features.denseblock4").shape == chw(1024, 7, 7));

// numbered<"denselayer", I> builds the names torchvision makes in a loop.
static_assert(numbered<"denselayer", 7>.view() == "denselayer7");
static_assert(numbered<"denselayer", 24>.view() == "denselayer24");
static_assert(numbered<"transition", 0>.view() == "transition0");
static_assert(numbered<"", 105>.view() == "105");

constexpr int find(std::string_view name) { return DenseNet121::graph.find_param(name); }
constexpr const ParamSpec& spec(std::string_view name) {
  return DenseNet121::graph.params[find(name)].spec;
}
// 58 dense layers (2 convs, 2 batch norms), 3 transitions (1 conv, 1 batch norm), conv0, norm0,
// norm5, the classifier's 2.
static_assert(DenseNet121::graph.num_params == 58 * (2 + 2 * 5) + 3 * (1 + 5) + 1 + 5 + 5 + 2);
static_assert(find("features.conv0.weight") == 0);
static_assert(find("features.norm0.num_batches_tracked") == 5);
static_assert(find("features.denseblock1.denselayer1.norm1.weight") == 6);
static_assert(find("features.denseblock1.denselayer6.conv2.weight") >= 0);
static_assert(find("features.denseblock1.denselayer7.conv2.weight") == -1);
static_assert(find("features.denseblock3.denselayer24.norm2.running_var") >= 0);
static_assert(find("features.denseblock4.denselayer16.conv1.weight") >= 0);
static_assert(find("features.transition3.norm.running_mean") >= 0);
static_assert(find("features.transition4.conv.weight") == -1);
static_assert(find("features.norm5.bias") >= 0);
static_assert(find("classifier.weight") >= 0 && find("classifier.bias") >= 0);
// A dense layer reads all the channels before it: denselayer5 of block 3 reads 256 + 4 · 32.
static_assert(spec("features.denseblock3.denselayer5.norm1.weight").dims[0] == 384);
static_assert(spec("features.denseblock3.denselayer5.conv1.weight").dims[0] == 128);
static_assert(spec("features.denseblock3.denselayer5.conv1.weight").dims[1] == 384);
static_assert(spec("features.denseblock3.denselayer5.conv2.weight").dims[0] == 32);
static_assert(spec("features.denseblock3.denselayer5.conv2.weight").dims[2] == 3);
static_assert(spec("features.transition2.conv.weight").dims[0] == 256);
static_assert(spec("features.transition2.conv.weight").dims[1] == 512);
static_assert(spec("classifier.weight").dims[1] == 1024);

// Ops per dense layer: norm1+relu1 (reads the block's running concatenation, so the batch norm
// cannot fold into a conv), conv1+norm2+relu2, conv2 into its slice; the layer's input is not
// copied: it stays where it was written, as the first channels of the layer's output. Per
// transition: norm+relu, conv, pool. The stem, pool0, norm5+relu, the pool, classifier.
static_assert(DenseNet121::graph.num_ops == 1 + 1 + 58 * 3 + 3 * 3 + 1 + 1 + 1);
constexpr auto& g = DenseNet121::graph;
constexpr int count_copies() {
  int n = 0;
  for (int i = 0; i < g.num_ops; ++i) {
    n += g.ops[i].kind == OpKind::copy;
  }
  return n;
}
static_assert(count_copies() == 0);
static_assert(g.ops[2].label.view() == "features.denseblock1.denselayer1.norm1+relu1");
static_assert(g.ops[2].kind == OpKind::batch_norm && g.ops[2].act.kind == Act::relu);
static_assert(g.ops[3].label.view() == "features.denseblock1.denselayer1.conv1+norm2+relu2");
static_assert(g.ops[4].label.view() == "features.denseblock1.denselayer1.conv2");
// Block 1 is one tensor of 64 + 6·32 = 256 channels: pool0 writes channels 0..63 of it, each
// layer's conv2 its 32, and layer k reads channels 0..(64 + 32(k-1) - 1) where they lie.
constexpr int block1 = g.tensors[g.ops[4].out].view_of;
static_assert(g.tensors[block1].spec.shape.c == 256 && g.tensors[block1].view_of < 0);
static_assert(g.tensors[g.ops[1].out].view_of == block1);  // pool0's output
static_assert(g.tensors[g.ops[1].out].channel_offset == 0);
static_assert(g.tensors[g.ops[4].out].channel_offset == 64);
static_assert(g.tensors[g.ops[2].in].view_of == block1 && g.ops[2].in == g.ops[1].out);
static_assert(g.ops[5].label.view() == "features.denseblock1.denselayer2.norm1+relu1");
static_assert(g.tensors[g.ops[5].in].view_of == block1 && g.tensors[g.ops[5].in].spec.shape.c == 96);
static_assert(g.tensors[g.ops[5].in].channel_offset == 0);
static_assert(g.tensors[g.ops[7].out].channel_offset == 96);  // layer 2's conv2
// The transition reads the whole block.
static_assert(g.ops[2 + 6 * 3].label.view() == "features.transition1.norm+relu");
static_assert(g.ops[2 + 6 * 3].in == block1);
// Block 1's tensor is live from pool0 on: the plan places it once, clear of everything live with it.
static_assert(DenseNet121::plan.tensors[block1].first == 1);
static_assert(g.ops[g.num_ops - 3].label.view() == "features.norm5+relu");
// torchvision's names alone make every op's label unique: none needed a "#2" (comparing every pair
// of labels here, as labels_unique does, would exceed clang's constexpr step budget).
constexpr bool no_label_renamed() {
  for (int i = 0; i < g.num_ops; ++i) {
    if (g.ops[i].label.view().find('#') != std::string_view::npos) {
      return false;
    }
  }
  return true;
}
static_assert(no_label_renamed());

// The plan: views take no storage, and nothing live at once overlaps.
template <class Plan>
constexpr bool plan_is_sound(const Plan& p) {
  for (int a = 0; a < g.num_tensors; ++a) {
    for (int b = a + 1; b < g.num_tensors; ++b) {
      if (p.owns_storage(a) && p.owns_storage(b) && p.live_together(a, b) && p.overlap(a, b)) {
        return false;
      }
    }
  }
  return true;
}
static_assert(plan_is_sound(DenseNet121::plan));

// In 16-bit NHWC each transition's norm+relu folds into its 1x1 conv, whose fused pool writes the
// next block's first channels (the CUDA engine's normed_conv): the plan keeps the block's
// concatenation, which that op reads, live through the pool, so that the next block's is placed
// clear of it. (In f32 NCHW nothing folds there, and the plan puts block 2 over block 1: what
// the rule prevents.)
constexpr auto& h = DenseNet121::plan_for<DType::f16, Layout::nhwc>;
constexpr int transition(int k) {
  int seen = 0;
  for (int i = 0; i < g.num_ops; ++i) {
    if (g.ops[i].label.view().starts_with("features.transition") &&
        g.ops[i].kind == OpKind::batch_norm && ++seen == k) {
      return i;
    }
  }
  return -1;
}
static_assert(norm_folds_into_conv(g, transition(1), DType::f16, Layout::nhwc));
static_assert(!norm_folds_into_conv(g, transition(1), DType::f32, Layout::nchw));
static_assert(pool_fuses_into_conv(g, transition(1) + 1));
constexpr bool transition_clear(int k) {
  const int i = transition(k);
  const int read = g.ops[i].in;  // the block's concatenation
  const int pooled = g.tensors[g.ops[i + 2].out].view_of;  // the next block's
  const int unpooled = g.ops[i + 1].out;
  return i >= 0 && g.ops[i + 2].kind == OpKind::avg_pool && g.tensors[read].view_of < 0 &&
         pooled >= 0 && h.tensors[read].last == i + 2 && !h.overlap(read, pooled) &&
         !h.overlap(read, unpooled);
}
static_assert(transition_clear(1) && transition_clear(2) && transition_clear(3));
static_assert(DenseNet121::plan.overlap(block1, g.tensors[g.ops[transition(1) + 2].out].view_of));
// (and a plan still sound with the longer lives)
static_assert(plan_is_sound(h));

int main() {}
