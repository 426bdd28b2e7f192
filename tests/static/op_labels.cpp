// Op labels (what summary(), profiles and NVTX ranges show): a user-given name as given, an
// unnamed layer as its kind and position ("conv0", "1.relu2"), fused parts relative to the first,
// "+add" for a residual's addition, and every label unique. Compiling this file is passing.
#include <string_view>

#include <strata/strata.hpp>

#include "label_checks.hpp"

using namespace strata;

template <class Net>
constexpr bool labels_are(std::initializer_list<std::string_view> want) {
  if (static_cast<int>(want.size()) != Net::graph.num_ops) {
    return false;
  }
  int i = 0;
  for (std::string_view w : want) {
    if (Net::graph.ops[i++].label.view() != w) {
      return false;
    }
  }
  return true;
}


constexpr auto pad1 = ConvOpts{.padding = 1};
constexpr auto same_pool = PoolOpts{.stride = 1, .padding = 1};

// A flat nn.Sequential-style chain: kind and position, batch_norm written "bn"; flatten runs no op
// but keeps its position (so dense is 3).
using Flat = decltype(input<3, 8, 8> | conv<4, 3, pad1> | batch_norm | leaky_relu<0.1f> |
                      flatten | dense<5> | sigmoid | log_softmax);
static_assert(labels_are<Flat>({"conv0+bn1+leaky_relu2", "dense4+sigmoid5", "log_softmax6"}));

// Nested unnamed chains (a residual's main branch): the kind goes before the layer's own position,
// the block's position stays in front ("1.conv0" is the conv at 1.0). A part from outside the block
// is written by its own name (the relu at position 2 after the block: "relu2").
using Nested = decltype(input<8, 6, 6> | conv<8, 3, pad1> |
                        residual(conv<8, 3, pad1> | batch_norm | relu | conv<8, 3, pad1> |
                                 batch_norm) |
                        relu |
                        residual<relu>(max_pool<3, same_pool> | relu | max_pool<3, same_pool>));
static_assert(labels_are<Nested>({"conv0", "1.conv0+bn1+relu2", "1.conv3+bn4+add+relu2",
                                  "3.max_pool0", "3.relu1", "3.max_pool2",
                                  "residual3+add+relu"}));
// Parameters keep PyTorch's names; only labels carry the kind.
static_assert(Nested::graph.find_param("1.3.weight") >= 0 &&
              Nested::graph.find_param("1.4.running_var") >= 0);

// An unnamed shortcut: its path and kind; a stand-alone add: the block as "residual" + position.
using Shortcuts = decltype(input<2, 5, 5> | relu | residual(max_pool<3, same_pool>, relu) |
                           residual(conv<2, 1>, conv<2, 1> | batch_norm));
static_assert(labels_are<Shortcuts>({"relu0", "1.shortcut.relu", "max_pool1", "residual1+add",
                                     "2.shortcut.conv0+bn1", "conv2+add"}));

// A named scope numbers its unnamed children: scope, then kind and position; a named part fused
// into an unnamed one is written by its name ("bn"), an unnamed one into a named by its kind.
using Scoped = decltype(input<3, 8, 8> |
                        named<"features">(conv<4, 3, pad1> | named<"bn">(batch_norm) | relu |
                                          max_pool<2>) |
                        named<"conv">(conv<4, 1>) | batch_norm | relu | flatten |
                        named<"head">(residual(dense<64>) | softmax));
static_assert(labels_are<Scoped>({"features.conv0+bn+relu2", "features.max_pool3",
                                  "conv+bn+relu", "head.dense0", "head.residual0+add",
                                  "head.softmax1"}));
// ... which a named block keeps: its add is "<name>+add".
using NamedBlock = decltype(input<2, 4, 4> | named<"block">(residual(max_pool<3, same_pool>)));
static_assert(labels_are<NamedBlock>({"block", "block+add"}));

// A name used twice for parameterless layers (a PyTorch module called twice, as `self.pool` in
// PyTorch's CIFAR-10 tutorial): the second op gets "#2", so profiles stay keyed uniquely.
using Reused = decltype(input<1, 8, 8> | named<"pool">(max_pool<2>) | conv<2, 1> |
                        named<"pool">(max_pool<2>) | named<"pool">(max_pool<2>));
static_assert(labels_are<Reused>({"pool", "conv1", "pool#2", "pool#3"}));

// Stand-alone parameterless layers repeated: unique by position.
using Repeated = decltype(input<1, 28, 28> | max_pool<2> | relu | max_pool<2> | relu);
static_assert(labels_are<Repeated>({"max_pool0", "relu1", "max_pool2", "relu3"}));

// named<""> (a block exported on its own) directly at the top: a leaf there is written by its kind.
using Bare = decltype(input<1, 4, 4> | named<"">(relu));
static_assert(labels_are<Bare>({"relu"}));

static_assert(labels_unique<Flat>() && labels_unique<Nested>() && labels_unique<Shortcuts>() &&
              labels_unique<Scoped>() && labels_unique<NamedBlock>() && labels_unique<Reused>() &&
              labels_unique<Repeated>());

int main() {}
