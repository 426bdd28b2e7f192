#pragma once
/// Compile-time shape inference over nodes, and the readable errors it raises: the stage
/// index, the layer, and the shapes involved appear in the compiler's message.
#include <type_traits>

#include "strata/pipeline/node.hpp"

namespace strata {

namespace diag {
/// The stage (0-based, counted from the input) where the declaration went wrong.
template <int Index>
struct stage {};
/// Shapes as they appear in the messages: input<C, H, W> or input<features>.
template <int... Dims>
struct input {};
template <int... Dims>
struct main_branch_output {};
template <int... Dims>
struct shortcut_output {};
template <int... Dims>
struct gate_output {};

template <template <int...> class T, int Rank, int C, int H, int W>
struct shape_as {
  using type = T<C, H, W>;
};
template <template <int...> class T, int C, int H, int W>
struct shape_as<T, 1, C, H, W> {
  using type = T<C>;
};
/// A concat's branch outputs, in order: branch_outputs<output<C, H, W>, output<C, H, W>, ...>.
template <int... Dims>
struct output {};
template <class... Outputs>
struct branch_outputs {};
#define STRATA_DIAG_SHAPE(T, s) typename shape_as<T, (s).rank, (s).c, (s).h, (s).w>::type

}  // namespace diag

/// The result of pushing a tensor of type `In` through node `N`: `out`, or the first problem,
/// which layer (`culprit`) had it and what it was fed (`culprit_in`; `other` is the second
/// shape of a residual whose branches disagree; `branch_outputs` every branch's shape of a concat
/// whose branches disagree).
template <class N, TensorSpec In>
struct Infer;

template <class N, TensorSpec In>
  requires LeafLayer<N>
struct Infer<N, In> {
  static constexpr Problem problem = N::check(In);
  static constexpr TensorSpec out = problem == Problem::none ? N::out(In) : In;
  using culprit = N;
  static constexpr TensorSpec culprit_in = In;
  static constexpr TensorSpec other = In;
  using branch_outputs = void;
};

template <TensorSpec In>
struct Infer<Identity, In> {
  static constexpr Problem problem = Problem::none;
  static constexpr TensorSpec out = In;
  using culprit = Identity;
  static constexpr TensorSpec culprit_in = In;
  static constexpr TensorSpec other = In;
  using branch_outputs = void;
};

namespace detail {
template <TensorSpec In, class... Ns>
struct InferSeq : Infer<Identity, In> {};

template <bool Ok, class Head, class... Rest>
struct InferSeqStep : Head {};  // the head failed: its problem stands, the rest is not looked at
template <class Head, class... Rest>
struct InferSeqStep<true, Head, Rest...> : InferSeq<Head::out, Rest...> {};

template <TensorSpec In, class N, class... Rest>
struct InferSeq<In, N, Rest...>
    : InferSeqStep<Infer<N, In>::problem == Problem::none, Infer<N, In>, Rest...> {};
}  // namespace detail

template <class... Ns, TensorSpec In>
struct Infer<Chain<Ns...>, In> : detail::InferSeq<In, Ns...> {};

template <class N, TensorSpec In>
  requires is_named_v<N>
struct Infer<N, In> : Infer<typename N::inner, In> {};

template <class C, TensorSpec In>
struct Infer<Sequential<C>, In> : Infer<C, In> {};

template <class M, class S, ActDesc P, TensorSpec In>
struct Infer<Residual<M, S, P>, In> {
 private:
  using IM = Infer<M, In>;
  using IS = Infer<S, In>;
  static constexpr bool branch_failed = IM::problem != Problem::none || IS::problem != Problem::none;
  using failed = std::conditional_t<IM::problem != Problem::none, IM, IS>;

 public:
  static constexpr Problem problem =
      branch_failed ? failed::problem
                    : (IM::out.shape == IS::out.shape ? Problem::none : Problem::branches_disagree);
  static constexpr TensorSpec out = IM::out;
  using culprit = std::conditional_t<branch_failed, typename failed::culprit, Residual<M, S, P>>;
  static constexpr TensorSpec culprit_in = branch_failed ? failed::culprit_in : IM::out;
  static constexpr TensorSpec other = branch_failed ? failed::other : IS::out;
  using branch_outputs = typename failed::branch_outputs;
};

template <class G, TensorSpec In>
struct Infer<Multiply<G>, In> {
 private:
  using IG = Infer<G, In>;
  static constexpr bool gate_failed = IG::problem != Problem::none;

 public:
  static constexpr Problem problem =
      gate_failed ? IG::problem
                  : (!In.shape.flat() && IG::out.shape == chw(In.shape.c, 1, 1)
                         ? Problem::none
                         : Problem::gate_shape_mismatch);
  static constexpr TensorSpec out = In;
  using culprit = std::conditional_t<gate_failed, typename IG::culprit, Multiply<G>>;
  static constexpr TensorSpec culprit_in = gate_failed ? IG::culprit_in : In;
  static constexpr TensorSpec other = gate_failed ? IG::other : IG::out;
  using branch_outputs = typename IG::branch_outputs;
};

namespace detail {
/// The first of `Is` whose problem is not none, or the last.
template <class I, class... Is>
struct first_failed {
  using type = I;
};
template <class I, class J, class... Is>
struct first_failed<I, J, Is...> {
  using type = std::conditional_t<I::problem != Problem::none, I,
                                  typename first_failed<J, Is...>::type>;
};

/// Whether shapes `s` can be joined along channels: all flat, or all (C,H,W) with one H and W.
template <std::size_t N>
constexpr bool concatenable(const Shape (&s)[N]) {
  for (const Shape& x : s) {
    if (x.rank != s[0].rank || x.h != s[0].h || x.w != s[0].w) {
      return false;
    }
  }
  return true;
}

/// The shapes of `s` joined along channels.
template <std::size_t N>
constexpr Shape joined(const Shape (&s)[N]) {
  Shape r = s[0];
  r.c = 0;
  for (const Shape& x : s) {
    r.c += x.c;
  }
  return r;
}
}  // namespace detail

template <class... Bs, TensorSpec In>
struct Infer<Concat<Bs...>, In> {
 private:
  using failed = typename detail::first_failed<Infer<Bs, In>...>::type;
  static constexpr bool branch_failed = failed::problem != Problem::none;
  static constexpr Shape shapes[] = {Infer<Bs, In>::out.shape...};

 public:
  static constexpr Problem problem =
      branch_failed ? failed::problem
                    : (detail::concatenable(shapes) ? Problem::none
                                                    : Problem::concat_branches_disagree);
  static constexpr TensorSpec out = TensorSpec{detail::joined(shapes), In.layout, In.dtype};
  using culprit = std::conditional_t<branch_failed, typename failed::culprit, Concat<Bs...>>;
  static constexpr TensorSpec culprit_in = branch_failed ? failed::culprit_in : In;
  static constexpr TensorSpec other = branch_failed ? failed::other : In;
  using branch_outputs = std::conditional_t<
      branch_failed, typename failed::branch_outputs,
      diag::branch_outputs<typename diag::shape_as<
          diag::output, Infer<Bs, In>::out.shape.rank, Infer<Bs, In>::out.shape.c,
          Infer<Bs, In>::out.shape.h, Infer<Bs, In>::out.shape.w>::type...>>;
};

namespace diag {
/// One static_assert per problem; only the failing one fires. Read the template arguments:
/// Stage, Layer, and the shapes.
template <Problem P, class Stage, class Layer, class Shape1, class Shape2>
struct shape_error {
  static_assert(P != Problem::needs_chw_input,
                "strata: this layer needs a (C,H,W) input but is fed a flat feature vector "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::groups_do_not_divide_input,
                "strata: conv: groups must divide the input channels "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::window_larger_than_input,
                "strata: the window of this layer is larger than its (padded) input "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::needs_flat_input,
                "strata: dense needs a flat input: put flatten before it "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::in_features_mismatch,
                "strata: dense: its in_features differ from the features it is fed "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::branches_disagree,
                "strata: residual: the main branch and the shortcut produce different shapes "
                "(see Stage, main_branch_output and shortcut_output below)");
  static_assert(P != Problem::transpose_groups_do_not_divide_input,
                "strata: conv_transpose: groups must divide the input channels "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::transpose_no_output,
                "strata: conv_transpose: the padding leaves no output "
                "(see Stage, Layer and input below)");
  static_assert(P != Problem::gate_shape_mismatch,
                "strata: multiply: the gate branch must produce one value per channel, (C, 1, 1), "
                "for a (C, H, W) input (see Stage, input and gate_output below)");
  static_assert(P != Problem::concat_branches_disagree,
                "strata: concat: the branches produce different heights and widths, or flat and "
                "(C,H,W) outputs (see Stage and branch_outputs below: every branch's output)");
};

/// Instantiates the error for the failed inference `I` at top-level stage `StageIndex`.
template <int StageIndex, class I>
constexpr void report() {
  if constexpr (I::problem == Problem::concat_branches_disagree) {
    [[maybe_unused]] shape_error<I::problem, stage<StageIndex>, typename I::culprit,
                                 typename I::branch_outputs, void> e;
  } else if constexpr (I::problem == Problem::gate_shape_mismatch) {
    [[maybe_unused]] shape_error<I::problem, stage<StageIndex>, typename I::culprit,
                                 STRATA_DIAG_SHAPE(input, I::culprit_in.shape),
                                 STRATA_DIAG_SHAPE(gate_output, I::other.shape)> e;
  } else if constexpr (I::problem == Problem::branches_disagree) {
    [[maybe_unused]] shape_error<I::problem, stage<StageIndex>, typename I::culprit,
                                 STRATA_DIAG_SHAPE(main_branch_output, I::culprit_in.shape),
                                 STRATA_DIAG_SHAPE(shortcut_output, I::other.shape)> e;
  } else {
    [[maybe_unused]] shape_error<I::problem, stage<StageIndex>, typename I::culprit,
                                 STRATA_DIAG_SHAPE(input, I::culprit_in.shape), void> e;
  }
}
}  // namespace diag
#undef STRATA_DIAG_SHAPE

}  // namespace strata
