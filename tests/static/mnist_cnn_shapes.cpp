// The canonical MNIST CNN: stage shapes, parameters (PyTorch's numbers), FLOPs, lowering and
// the memory plan — all checked at compile time. Compiling this file is passing.
#include <strata/models/mnist_cnn.hpp>

using namespace strata;
using Net = models::MnistCnn;

static_assert(Net::num_stages == 13);
static_assert(Net::input_spec.shape == chw(1, 28, 28));
static_assert(Net::stage_output(0).shape == chw(32, 28, 28));   // conv 3x3 p1
static_assert(Net::stage_output(1).shape == chw(32, 28, 28));   // batch_norm
static_assert(Net::stage_output(3).shape == chw(32, 14, 14));   // max_pool 2
static_assert(Net::stage_output(4).shape == chw(64, 14, 14));   // conv
static_assert(Net::stage_output(7).shape == chw(64, 7, 7));     // max_pool 2
static_assert(Net::stage_output(8).shape == features(3136));    // flatten
static_assert(Net::stage_output(9).shape == features(128));     // dense
static_assert(Net::stage_output(12).shape == features(10));     // softmax
static_assert(Net::output_spec.shape == features(10));

// sum(p.numel() for p in model.parameters()) for the same nn.Sequential: 421,834.
static_assert(Net::param_count == 320 + 64 + 18496 + 128 + 401536 + 1290);
static_assert(Net::param_count == 421834);
// conv/dense FLOPs are 2 × multiply-adds: 451,584 + 7,225,344 + 802,816 + 2,560.
static_assert(Net::graph.ops[0].layer.kind == LayerKind::conv);
static_assert(Net::graph.rows[0].flops == 451584);
static_assert(Net::graph.rows[4].flops == 7225344);
static_assert(Net::graph.rows[9].flops == 802816);
static_assert(Net::graph.rows[11].flops == 2560);

// state_dict names of the flat nn.Sequential.
static_assert(Net::graph.params[0].name.view() == "0.weight");
static_assert(Net::graph.params[1].name.view() == "0.bias");
static_assert(Net::graph.params[2].name.view() == "1.weight");
static_assert(Net::graph.find_param("1.running_var") == 5);
static_assert(Net::graph.find_param("1.num_batches_tracked") == 6);
static_assert(Net::graph.find_param("9.weight") >= 0 && Net::graph.find_param("11.bias") >= 0);
static_assert(Net::graph.find_param("10.weight") == -1);  // relu has no parameters

// Lowering: conv+bn+relu fused, dense+relu fused, flatten is no op.
static_assert(Net::graph.num_ops == 7);
static_assert(Net::graph.ops[0].kind == OpKind::conv && Net::graph.ops[0].bn == 2 &&
              Net::graph.ops[0].act.kind == Act::relu);
static_assert(Net::graph.ops[1].kind == OpKind::max_pool);
// Labels: unnamed layers are written as kind and position, batch_norm as "bn".
static_assert(Net::graph.ops[0].label.view() == "conv0+bn1+relu2");
static_assert(Net::graph.ops[1].label.view() == "max_pool3");
static_assert(Net::graph.ops[2].label.view() == "conv4+bn5+relu6");
static_assert(Net::graph.ops[3].label.view() == "max_pool7");
static_assert(Net::graph.ops[4].label.view() == "dense9+relu10");
static_assert(Net::graph.ops[5].label.view() == "dense11");
static_assert(Net::graph.ops[6].label.view() == "softmax12");
static_assert(Net::graph.ops[4].kind == OpKind::dense && Net::graph.ops[4].act.kind == Act::relu);
static_assert(Net::graph.ops[4].in_spec.shape == features(3136));
static_assert(Net::graph.ops[5].kind == OpKind::dense && Net::graph.ops[5].act.kind == Act::none);
static_assert(Net::graph.ops[6].kind == OpKind::softmax);

// Memory plan: the arena equals the peak, and no two tensors live at the same time share a
// byte. Each conv's output is read only by a pool (conv+pool fusion, pool_fuses_into_conv), so
// the conv's input stays live through the pool: the fused op reads it while writing the pooled
// map.
constexpr auto& plan = Net::plan;
static_assert(pool_fuses_into_conv(Net::graph, 0) && pool_fuses_into_conv(Net::graph, 2));
static_assert(!pool_fuses_into_conv(Net::graph, 1) && !pool_fuses_into_conv(Net::graph, 4));
static_assert(plan.tensors[Net::graph.input].last == 1);
static_assert(plan.activation_bytes == plan.peak_bytes);
// The peak: the input (1·28·28·4), conv1's output (32·28·28·4) and the pooled map (32·14·14·4).
static_assert(plan.activation_bytes == 28 * 28 * 4 + 32 * 28 * 28 * 4 + 32 * 14 * 14 * 4);
static_assert(Net::graph.num_tensors == 8);
constexpr bool no_live_overlap() {
  for (int a = 0; a < Net::graph.num_tensors; ++a) {
    for (int b = a + 1; b < Net::graph.num_tensors; ++b) {
      if (plan.live_together(a, b) && plan.overlap(a, b)) {
        return false;
      }
    }
  }
  return true;
}
static_assert(no_live_overlap());
// A linear chain with no conv+pool pair ping-pongs between the two ends of an arena of the peak.
using PlainChain = decltype(input<1, 8, 8> | conv<4, 3> | global_avg_pool | flatten | dense<3> | relu |
                       dense<2>);
constexpr bool ping_pong() {
  constexpr auto& p = PlainChain::plan;
  for (int t = 0; t < PlainChain::graph.num_tensors; ++t) {
    const bool bottom = p.tensors[t].offset == 0;
    const bool top = p.tensors[t].offset + p.tensors[t].bytes == p.activation_bytes;
    // The input and every second tensor at the bottom, the others at the top.
    if ((t % 2 == 0 && !bottom) || (t % 2 == 1 && !top)) {
      return false;
    }
  }
  return p.activation_bytes == p.peak_bytes;
}
static_assert(ping_pong(), "a linear chain ping-pongs between the two ends of the arena");
// A user can bound the activation memory at compile time.
static_assert(Net::plan.activation_bytes <= 128 * 1024);
// f16 NHWC pads channels to 8: the 1-channel input takes 8 channels' room.
static_assert(Net::plan_for<DType::f16, Layout::nhwc>.tensors[0].bytes == 8 * 28 * 28 * 2);

int main() {}
