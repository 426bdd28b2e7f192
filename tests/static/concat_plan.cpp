// concat: parameter names as an Inception-style nn.Module's state_dict, fusion at its edges, and
// the memory plan: branches write their channel slices of the output in place, nothing co-live
// overlaps.
#include <strata/strata.hpp>

#include "label_checks.hpp"

using namespace strata;

using Inception = decltype(
    input<3, 7, 7> | conv<8, 1> |
    named<"mixed">(concat(named<"branch1x1">(conv<4, 1> | batch_norm | relu),
                          named<"branch3x3">(conv<4, 1> | relu | conv<6, 3, ConvOpts{.padding = 1}>),
                          named<"branch_pool">(max_pool<3, PoolOpts{.stride = 1, .padding = 1}> | conv<3, 1>),
                          identity)) |
    relu);

static_assert(Inception::output_spec.shape == chw(4 + 6 + 3 + 8, 7, 7));
static_assert(Inception::graph.find_param("mixed.branch1x1.0.weight") >= 0);
static_assert(Inception::graph.find_param("mixed.branch1x1.1.running_var") >= 0);
static_assert(Inception::graph.find_param("mixed.branch3x3.2.weight") >= 0);
static_assert(Inception::graph.find_param("mixed.branch_pool.1.bias") >= 0);
static_assert(labels_unique<Inception>());

// A relu at the start of a branch must not fuse into the conv before the block: the other
// branches read that conv's output unchanged. The relu after the block is an op of its own.
using ReluBranch = decltype(input<2, 3, 3> | conv<2, 1> | concat(relu, identity));
static_assert(ReluBranch::graph.ops[0].act.kind == Act::none);
static_assert(Inception::graph.ops[Inception::graph.num_ops - 1].kind == OpKind::activation);

// In place: every branch but the identity writes into the output; the identity is one copy.
template <class Net>
constexpr int count_ops(OpKind k) {
  int n = 0;
  for (int i = 0; i < Net::graph.num_ops; ++i) {
    n += Net::graph.ops[i].kind == k;
  }
  return n;
}
static_assert(count_ops<Inception>(OpKind::copy) == 1);

// No two tensors with storage of their own overlap while both are live; each slice lies inside
// its base at its channel offset, and the slices tile the base's channels.
template <class Net>
constexpr bool plan_sound() {
  const auto& g = Net::graph;
  const auto& p = Net::plan;
  for (int a = 0; a < g.num_tensors; ++a) {
    for (int b = a + 1; b < g.num_tensors; ++b) {
      if (p.owns_storage(a) && p.owns_storage(b) && p.live_together(a, b) && p.overlap(a, b)) {
        return false;
      }
    }
  }
  for (int t = 0; t < g.num_tensors; ++t) {
    const TensorEntry& e = g.tensors[t];
    if (e.view_of >= 0) {
      const TensorEntry& base = g.tensors[e.view_of];
      if (!p.owns_storage(e.view_of) || e.channel_offset + e.spec.shape.c > base.spec.shape.c ||
          p.tensors[t].offset != p.tensors[e.view_of].offset) {
        return false;
      }
      // Live from the first slice's writer on.
      if (e.producer < p.tensors[e.view_of].first) {
        return false;
      }
    }
  }
  return true;
}
static_assert(plan_sound<Inception>());
using Nested = decltype(input<2, 4, 4> | conv<4, 1> |
                        concat(identity, concat(conv<2, 1>, identity, max_pool<2, PoolOpts{.stride = 1, .padding = 1}> | conv<1, 2>)) |
                        conv<3, 1>);
static_assert(Nested::stage_output(1).shape == chw(4 + 2 + 4 + 1, 4, 4));
static_assert(plan_sound<Nested>());

// DenseNet's layer: an identity that only pointwise ops at the start of the other branches read
// stays where it was written (the output's first channels), nothing is copied, and the plan
// stays sound; the second layer's input is the first one's output, moved into the second's.
using DenseLike = decltype(input<3, 4, 4> | conv<8, 1> |
                           concat(identity, batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1}>) |
                           concat(identity, relu | conv<8, 1>) | conv<2, 1>);
static_assert(count_ops<DenseLike>(OpKind::copy) == 0);
static_assert(plan_sound<DenseLike>());
static_assert(DenseLike::graph.tensors[DenseLike::graph.ops[0].out].view_of ==
              DenseLike::graph.ops[DenseLike::graph.num_ops - 1].in);
// Otherwise the identity is copied: a conv reads it; the network's input; 6 channels (not whole
// groups of 8); a residual or a gate around the concat reads it too; two identity branches.
using ConvReads = decltype(input<3, 4, 4> | conv<8, 1> | concat(identity, conv<8, 1>));
using InputItself = decltype(input<8, 4, 4> | concat(identity, relu | conv<8, 1>));
using SixChannels = decltype(input<3, 4, 4> | conv<6, 1> | concat(identity, relu | conv<8, 1>));
using InResidual = decltype(input<3, 4, 4> | conv<8, 1> |
                            residual(concat(identity, batch_norm | relu | conv<8, 1>), conv<16, 1>));
using InGate = decltype(input<3, 4, 4> | conv<8, 1> |
                        multiply(concat(identity, relu | conv<8, 1>) | global_avg_pool | conv<8, 1> |
                                 sigmoid));
using TwoIdentities = decltype(input<3, 4, 4> | conv<8, 1> | concat(identity, identity, relu | conv<8, 1>));
static_assert(count_ops<ConvReads>(OpKind::copy) == 1);
static_assert(count_ops<InputItself>(OpKind::copy) == 1);
static_assert(count_ops<SixChannels>(OpKind::copy) == 1);
static_assert(count_ops<InResidual>(OpKind::copy) == 1);
static_assert(count_ops<InGate>(OpKind::copy) == 1);
static_assert(count_ops<TwoIdentities>(OpKind::copy) == 2);
static_assert(plan_sound<InResidual>() && plan_sound<InGate>() && plan_sound<TwoIdentities>());

int main() {}
