#pragma once
/// The composite nodes of a declaration — Chain (a | b | c), Named (named<"conv1">(x)),
/// Sequential (sequential(a | b)), Residual (residual(main, shortcut)), Concat (concat(a, b, ...)),
/// Multiply (multiply(gate)) — the Node concept, and `|` between layers.
#include <string_view>
#include <type_traits>

#include "strata/core/fixed_string.hpp"
#include "strata/layers/activation.hpp"
#include "strata/layers/layer.hpp"

namespace strata {

/// Layers composed with `|` before an input is attached: checked when the chain is attached
/// to an input, where each element becomes a stage of its own.
template <class... Ns>
struct Chain : NodeBase {};

/// A node under a name, so parameter names follow PyTorch's modules: `named<"fc">(dense<10>)`
/// gives "fc.weight"; a named chain numbers its children like nn.Sequential ("downsample.0").
/// The empty name adds no part: `named<"">(block)` puts the block's own names ("conv1.weight")
/// directly under its parent, as for a custom nn.Module exported on its own.
template <FixedString S, class N>
struct Named : NodeBase {
  // Members rather than partial specialisations on S: nvcc's front end cannot deduce a
  // class-type template parameter whose type is itself deduced.
  using inner = N;
  static constexpr std::string_view name = S.view();
  static constexpr bool is_named_node = true;
};

/// A chain kept as one child of the chain it stands in, as an nn.Sequential inside an
/// nn.Sequential: at position 3 of `named<"features">(...)`, `sequential(conv | bn | relu6)` has
/// "features.3.0.weight", "features.3.1.running_mean"; a named child goes by its name under that
/// position (`sequential(named<"conv">(...))` → "features.3.conv.…", as a module with an attribute
/// `conv`). `|` alone would splice the chain's layers into the enclosing chain. `C` is a Chain.
template <class C>
struct Sequential : NodeBase {
  using chain = C;
};

/// The identity: the shortcut of a residual block, or a concat branch that passes its input on.
struct Identity : NodeBase {};
/// `identity`, e.g. `concat(identity, max_pool<3, PoolOpts{.stride = 1, .padding = 1}>)`.
inline constexpr Identity identity{};

/// out = Post(Main(x) + Shortcut(x)); Post is an activation or Act::none. The main branch's
/// children are named by position (or their own names), the shortcut by its own name.
template <class Main, class Shortcut, ActDesc Post>
struct Residual : NodeBase {};

/// Branches that all read the same input, their outputs joined along channels (torch.cat(..., 1)).
/// Unnamed branches are numbered under the block as an nn.ModuleList numbers its children ("0",
/// "1.0"); a named<"branch1x1">(...) branch goes by its name.
template <class... Branches>
struct Concat : NodeBase {};

/// out = x · Gate(x), the gate (C,1,1) broadcast over H and W: a channel gate such as
/// squeeze-and-excitation. The gate's children are named directly under the block.
template <class Gate>
struct Multiply : NodeBase {};

template <class T>
inline constexpr bool is_chain_v = false;
template <class... Ns>
inline constexpr bool is_chain_v<Chain<Ns...>> = true;

template <class T>
inline constexpr bool is_named_v = requires { requires T::is_named_node; };

template <class T>
inline constexpr bool is_sequential_v = false;
template <class C>
inline constexpr bool is_sequential_v<Sequential<C>> = true;

template <class T>
inline constexpr bool is_residual_v = false;
template <class M, class S, ActDesc P>
inline constexpr bool is_residual_v<Residual<M, S, P>> = true;

template <class T>
inline constexpr bool is_concat_v = false;
template <class... Bs>
inline constexpr bool is_concat_v<Concat<Bs...>> = true;

template <class T>
inline constexpr bool is_multiply_v = false;
template <class G>
inline constexpr bool is_multiply_v<Multiply<G>> = true;

/// Anything that can stand on the right of `|`: a leaf layer or a composite node.
template <class T>
concept Node = LeafLayer<T> || is_chain_v<T> || is_named_v<T> || is_sequential_v<T> ||
               is_residual_v<T> || is_concat_v<T> || is_multiply_v<T> ||
               std::is_same_v<T, Identity>;

namespace diag {
/// Shown in the diagnostics when the right of `|` is not a Strata layer.
template <class What>
struct not_a_layer {
  // A Strata layer whose own parameter check failed (clang then treats its type as invalid)
  // has already been reported: no second error for it.
  static_assert(Node<What> || std::is_base_of_v<NodeBase, What>,
                "strata: the right-hand side of '|' is not a Strata layer (see 'What' below)");
};
}  // namespace diag

namespace detail {
template <class A, class B>
constexpr auto chain_concat(A, B) {
  if constexpr (!Node<B>) {
    [[maybe_unused]] diag::not_a_layer<B> error;
    return A{};
  } else {
    using AC = std::conditional_t<is_chain_v<A>, A, Chain<A>>;
    using BC = std::conditional_t<is_chain_v<B>, B, Chain<B>>;
    return []<class... As, class... Bs>(Chain<As...>, Chain<Bs...>) {
      return Chain<As..., Bs...>{};
    }(AC{}, BC{});
  }
}
}  // namespace detail

/// layer | layer → Chain. Found by ADL for Strata nodes only.
template <class A, class B>
  requires(Node<A> && std::is_base_of_v<NodeBase, A>)
constexpr auto operator|(A a, B b) {
  return detail::chain_concat(a, b);
}

/// layer | tanh: the function strata::tanh stands for its layer (see activation.hpp).
template <class A>
  requires(Node<A> && std::is_base_of_v<NodeBase, A>)
constexpr auto operator|(A a, TanhFunction) {
  return detail::chain_concat(a, Tanh{});
}

/// Gives a node a name: parameter names become "<name>.<param>".
template <FixedString S, class N>
  requires Node<N>
constexpr Named<S, N> named(N) {
  return {};
}
template <FixedString S>
constexpr Named<S, Tanh> named(TanhFunction) {
  return {};
}

namespace detail {
template <auto Post>
consteval ActDesc post_activation() {
  if constexpr (std::is_same_v<decltype(Post), const Identity> ||
                std::is_same_v<decltype(Post), Identity>) {
    return ActDesc{};
  } else {
    static_assert(LeafLayer<std::remove_cvref_t<decltype(Post)>> &&
                      std::remove_cvref_t<decltype(Post)>::desc.kind == LayerKind::activation,
                  "residual: what follows the addition must be an activation, e.g. residual<relu>");
    return std::remove_cvref_t<decltype(Post)>::desc.act;
  }
}
}  // namespace detail

/// A residual block with the identity shortcut: out = Post(main(x) + x), e.g.
/// `residual<relu>(conv<64, 3, ConvOpts{.padding = 1}> | batch_norm)`.
template <auto Post = Identity{}, class M>
  requires Node<M>
constexpr Residual<M, Identity, detail::post_activation<Post>()> residual(M) {
  return {};
}
/// A residual block with a projection shortcut: out = Post(main(x) + shortcut(x)), e.g.
/// `residual<relu>(main, named<"downsample">(conv<128, 1, ConvOpts{.stride = 2}> | batch_norm))`.
template <auto Post = Identity{}, class M, class S>
  requires(Node<M> && Node<S>)
constexpr Residual<M, S, detail::post_activation<Post>()> residual(M, S) {
  return {};
}

namespace detail {
/// The node an argument stands for: `tanh` (a function, see activation.hpp) is the Tanh layer.
template <class T>
using as_node_t = std::conditional_t<std::is_same_v<T, TanhFunction>, Tanh, T>;
}  // namespace detail

/// Branches joined along channels: out = torch.cat([b(x) for b in branches], 1). Every branch
/// (a layer, a chain, named<...>, residual, identity, another concat) reads the block's input; all
/// must produce the same H and W (or all be flat).
template <class... Bs>
constexpr auto concat(Bs...) {
  static_assert(sizeof...(Bs) > 0, "concat: give it at least one branch");
  static_assert((Node<detail::as_node_t<Bs>> && ...),
                "concat: every branch must be a Strata layer or node (see Bs below)");
  if constexpr (sizeof...(Bs) > 0 && (Node<detail::as_node_t<Bs>> && ...)) {
    return Concat<detail::as_node_t<Bs>...>{};
  } else {
    return Concat<Identity>{};  // reported above; nothing cascades
  }
}

/// A chain (or a single node) kept as one child where it stands, numbered under its own position:
/// `named<"features">(sequential(conv<32, 3, ConvOpts{.stride = 2, .padding = 1, .bias = false}> |
/// batch_norm | relu6) | ...)` is torchvision's features.0 = Conv2dNormActivation
/// ("features.0.0.weight", "features.0.1.weight", ...).
template <class N>
constexpr auto sequential(N) {
  using Inner = detail::as_node_t<N>;
  static_assert(Node<Inner>,
                "sequential: its argument must be a Strata layer or node (see N below)");
  if constexpr (is_chain_v<Inner>) {
    return Sequential<Inner>{};
  } else if constexpr (Node<Inner>) {
    return Sequential<Chain<Inner>>{};
  } else {
    return Sequential<Chain<Identity>>{};  // reported above; nothing cascades
  }
}

/// A channel gate: out = x · gate(x), where the gate branch reads x and produces (C,1,1), e.g.
/// `multiply(global_avg_pool | conv<4, 1> | relu | conv<16, 1> | sigmoid)` on 16 channels.
template <class G>
  requires Node<G>
constexpr Multiply<G> multiply(G) {
  return {};
}

}  // namespace strata
