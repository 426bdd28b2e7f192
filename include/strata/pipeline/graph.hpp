#pragma once
/// Lowering at compile time: a declaration becomes a Graph of rows (one per declared node, for
/// names and summary), parameters (PyTorch state_dict names), tensors and fused ops.
/// Fusion is a rewrite of this op list: conv(+bias) → batch_norm → (+ residual) → activation
/// become one op; dense → activation one op; flatten and dropout become no op at all.
#include <algorithm>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "strata/core/fixed_string.hpp"
#include "strata/core/name_set.hpp"
#include "strata/pipeline/node.hpp"

namespace strata {

[[nodiscard]] constexpr std::string_view op_kind_name(OpKind k) {
  constexpr std::string_view names[] = {"conv",     "dense",    "batch_norm",      "activation",
                                        "max_pool", "avg_pool", "global_avg_pool", "softmax",
                                        "log_softmax", "add",   "upsample",        "adaptive_avg_pool",
                                        "copy",     "multiply", "conv_transpose"};
  return names[static_cast<int>(k)];
}

[[nodiscard]] constexpr std::string_view act_name(Act a) {
  constexpr std::string_view names[] = {"none",      "relu",      "leaky_relu",  "clip",
                                        "sigmoid",   "tanh",      "elu",         "gelu",
                                        "gelu_tanh", "silu",      "hardswish",   "hardsigmoid",
                                        "mish"};
  return names[static_cast<int>(a)];
}

[[nodiscard]] constexpr std::string_view layer_kind_name(const LayerDesc& d) {
  switch (d.kind) {
    case LayerKind::conv: return "conv";
    case LayerKind::batch_norm: return "batch_norm";
    case LayerKind::activation: return act_name(d.act.kind);
    case LayerKind::max_pool: return "max_pool";
    case LayerKind::avg_pool: return "avg_pool";
    case LayerKind::global_avg_pool: return "global_avg_pool";
    case LayerKind::flatten: return "flatten";
    case LayerKind::dense: return "dense";
    case LayerKind::softmax: return "softmax";
    case LayerKind::log_softmax: return "log_softmax";
    case LayerKind::dropout: return "dropout";
    case LayerKind::upsample: return "upsample";
    case LayerKind::adaptive_avg_pool: return "adaptive_avg_pool";
    case LayerKind::conv_transpose: return "conv_transpose";
  }
  return "?";
}

/// The kind as written in op labels: layer_kind_name, but "bn" for batch_norm (as torchvision
/// names its batch norms: "conv0+bn1+relu2" reads as "layer1.0.conv1+bn1+relu" does).
[[nodiscard]] constexpr std::string_view label_kind_name(const LayerDesc& d) {
  return d.kind == LayerKind::batch_norm ? std::string_view("bn") : layer_kind_name(d);
}

/// One declared node: a leaf layer or a composite ("sequential", "residual").
struct LayerRow {
  Name name;                   ///< full path: "layer1.0.conv1", or "3" in an nn.Sequential
  std::string_view kind{};     ///< "conv", "relu", "sequential", "residual", ...
  LayerDesc desc{};            ///< leaf layers only
  bool composite = false;
  int depth = 0;               ///< 0 for top-level stages
  TensorSpec in{};
  TensorSpec out{};
  int first_param = 0;
  int param_count = 0;
  std::int64_t params = 0;     ///< learnable parameter count (subtree, for composites)
  std::int64_t flops = 0;      ///< per image (subtree, for composites)
};

/// One parameter tensor with its PyTorch state_dict name.
struct ParamEntry {
  Name name;
  ParamSpec spec{};
  int row = -1;
};

/// One activation tensor (per image) and its life: produced by op `producer` (-1: the network
/// input), read last by op `last_use`. A concat's output is `assembled` from channel slices, each
/// a `view_of` it from `channel_offset` on, written by its own op (`producer` is the first of
/// them); a view has no storage of its own.
struct TensorEntry {
  TensorSpec spec{};
  int producer = -1;
  int last_use = -1;
  int uses = 0;
  int view_of = -1;
  int channel_offset = 0;
  bool assembled = false;
};

/// One executed op, possibly several declared layers fused. `weight`/`bias` index the
/// conv/dense parameters; `bn` the first of batch_norm's (weight, bias, running_mean,
/// running_var); `in2` the residual added before `act`.
struct Op {
  OpKind kind = OpKind::conv;
  LayerDesc layer{};
  TensorSpec in_spec{};
  TensorSpec out_spec{};
  int in = -1;
  int in2 = -1;
  int out = -1;
  int weight = -1;
  int bias = -1;
  int bn = -1;
  float bn_eps = 0.0f;
  ActDesc act{};
  Name label;               ///< the fused layers' names: "layer1.0.conv2+bn2+add+relu"
  std::int64_t flops = 0;   ///< per image, from the cost model
  bool named_label = false; ///< the first fused layer has a user-given name (see label_name)
};

/// Capacities of a Graph.
struct GraphCounts {
  int rows = 0;
  int params = 0;
  int ops = 0;
  int tensors = 0;
  constexpr GraphCounts operator+(GraphCounts o) const {
    return {rows + o.rows, params + o.params, ops + o.ops, tensors + o.tensors};
  }
};

/// The lowered network.
template <GraphCounts C>
struct Graph {
  LayerRow rows[std::max(C.rows, 1)]{};
  ParamEntry params[std::max(C.params, 1)]{};
  Op ops[std::max(C.ops, 1)]{};
  TensorEntry tensors[std::max(C.tensors, 1)]{};
  int num_rows = 0;
  int num_params = 0;
  int num_ops = 0;
  int num_tensors = 0;
  int input = 0;   ///< tensor id of the network input
  int output = 0;  ///< tensor id of the network output

  [[nodiscard]] constexpr std::int64_t learnable_params() const {
    std::int64_t n = 0;
    for (int i = 0; i < num_params; ++i) {
      if (params[i].spec.learnable) {
        n += params[i].spec.numel();
      }
    }
    return n;
  }
  [[nodiscard]] constexpr std::int64_t flops() const {
    std::int64_t n = 0;
    for (int i = 0; i < num_ops; ++i) {
      n += ops[i].flops;
    }
    return n;
  }
  /// Index of the parameter named `name`, or -1.
  [[nodiscard]] constexpr int find_param(std::string_view name) const {
    for (int i = 0; i < num_params; ++i) {
      if (params[i].name.view() == name) {
        return i;
      }
    }
    return -1;
  }
};

namespace detail {

/// Upper bounds on what a node adds to a graph.
template <class N>
struct NodeCounts;
template <class N>
  requires LeafLayer<N>
struct NodeCounts<N> {
  static constexpr GraphCounts value{1, N::params(TensorSpec{chw(1, 1, 1)}).count, 1, 1};
};
template <>
struct NodeCounts<Identity> {
  static constexpr GraphCounts value{};
};
template <class... Ns>
struct NodeCounts<Chain<Ns...>> {
  static constexpr GraphCounts value = (GraphCounts{} + ... + NodeCounts<Ns>::value);
};
template <class N>
  requires is_named_v<N>
struct NodeCounts<N> {
  static constexpr GraphCounts value = NodeCounts<typename N::inner>::value + GraphCounts{1, 0, 0, 0};
};
template <class C>
struct NodeCounts<Sequential<C>> {
  static constexpr GraphCounts value = NodeCounts<C>::value + GraphCounts{1, 0, 0, 0};
};
template <class M, class S, ActDesc P>
struct NodeCounts<Residual<M, S, P>> {
  static constexpr GraphCounts value =
      NodeCounts<M>::value + NodeCounts<S>::value + GraphCounts{1, 0, 1, 1};
};
template <class G>
struct NodeCounts<Multiply<G>> {
  static constexpr GraphCounts value = NodeCounts<G>::value + GraphCounts{1, 0, 1, 1};
};
// A row, the output, and for each branch at most a copy op and its slice.
template <class... Bs>
struct NodeCounts<Concat<Bs...>> {
  static constexpr int n = static_cast<int>(sizeof...(Bs));
  static constexpr GraphCounts value =
      (GraphCounts{1, 0, n, 1 + n} + ... + NodeCounts<Bs>::value);
};

/// How a node's own name part was given.
enum class NamePart : std::uint8_t {
  position,  ///< its index in a chain ("3"), as nn.Sequential numbers its children
  named,     ///< by named<"...">: the user's (or torchvision's) name
  shortcut,  ///< "shortcut": a residual's shortcut that has no name of its own
};

/// Where a node sits: its parent's path, its own name part and how it was given, and its depth.
struct Ctx {
  Name parent;
  Name self;
  NamePart part = NamePart::position;
  int depth = 0;
  [[nodiscard]] constexpr Name path() const { return parent.dot(self.view()); }
};

/// How a node of kind `kind` ("conv", "bn", "residual") at `ctx` is written in op labels: a
/// user-given name as given ("layer1.0.conv1", "fc"); a position with the kind before it, the
/// rest of the path kept ("conv0", "1.relu2", "layer2.0.downsample.conv0"); an unnamed shortcut
/// as its path and kind ("1.shortcut.conv").
constexpr Name label_name(const Ctx& ctx, std::string_view kind) {
  switch (ctx.part) {
    case NamePart::named:  // named<""> at the top has an empty path
      return ctx.path().empty() ? Name(kind) : ctx.path();
    case NamePart::position: return ctx.parent.dot(Name(kind).append(ctx.self.view()).view());
    case NamePart::shortcut: break;
  }
  return ctx.path().dot(kind);
}

/// A value flowing through the graph: a tensor id and its type at this point (flatten changes
/// the type, not the tensor).
struct Val {
  int tensor = 0;
  TensorSpec spec{};
};

/// `other` relative to `base`: the part after their common dotted prefix.
constexpr std::string_view relative_name(std::string_view base, std::string_view other) {
  std::size_t cut = 0;
  for (std::size_t i = 0; i < base.size() && i < other.size() && base[i] == other[i]; ++i) {
    if (base[i] == '.') {
      cut = i + 1;
    }
  }
  return other.substr(cut);
}

template <class G>
constexpr int add_tensor(G& g, TensorSpec spec, int producer) {
  g.tensors[g.num_tensors] = TensorEntry{spec, producer, -1, 0};
  return g.num_tensors++;
}

template <class G>
constexpr void use_tensor(G& g, int t, int op) {
  g.tensors[t].uses += 1;
  g.tensors[t].last_use = op;
}

template <class G>
constexpr Val add_op(G& g, Op op, Val in, TensorSpec out_spec, int in2 = -1) {
  const int index = g.num_ops++;
  op.in = in.tensor;
  op.in_spec = in.spec;
  op.out_spec = out_spec;
  op.in2 = in2;
  use_tensor(g, in.tensor, index);
  if (in2 >= 0) {
    use_tensor(g, in2, index);
  }
  op.out = add_tensor(g, out_spec, index);
  g.ops[index] = op;
  return {op.out, out_spec};
}

/// A stand-alone two-input elementwise op (a residual's add, a gate's multiply) of `in` and
/// tensor `other`, labelled after its block: "residual3+add", "block.2+mul".
template <class G>
constexpr Val add_elementwise_op(G& g, const Ctx& ctx, OpKind kind, std::string_view block,
                                 std::string_view suffix, Val in, int other) {
  Op op{};
  op.kind = kind;
  op.label = label_name(ctx, block);
  op.label.append(suffix);
  op.named_label = ctx.part == NamePart::named;
  op.flops = in.spec.shape.numel();
  return add_op(g, op, in, in.spec, other);
}

/// The last op, when it produced `t` and nothing has read `t` yet: then a following layer may be
/// fused into it.
template <class G>
constexpr Op* fusable_producer(G& g, int t) {
  if (g.num_ops == 0 || g.tensors[t].producer != g.num_ops - 1 || g.tensors[t].uses != 0 ||
      g.tensors[t].assembled || g.tensors[t].view_of >= 0) {
    return nullptr;
  }
  return &g.ops[g.num_ops - 1];
}

template <class N, class G>
constexpr Val visit(G& g, Val in, const Ctx& ctx);

template <class L, class G>
constexpr Val visit_leaf(G& g, Val in, const Ctx& ctx) {
  constexpr LayerDesc d = L::desc;
  const TensorSpec out = L::out(in.spec);
  const ParamList pl = L::params(in.spec);
  const int row = g.num_rows++;
  const int first_param = g.num_params;
  std::int64_t learnable = 0;
  const Name path = ctx.path();  // built once: names are built a character at a time
  for (int i = 0; i < pl.count; ++i) {
    g.params[g.num_params++] = ParamEntry{path.dot(pl.items[i].suffix), pl.items[i], row};
    if (pl.items[i].learnable) {
      learnable += pl.items[i].numel();
    }
  }
  const std::int64_t flops = L::flops(in.spec);
  g.rows[row] = LayerRow{path, layer_kind_name(d), d, false, ctx.depth, in.spec, out,
                         first_param, pl.count, learnable, flops};
  // How this layer is written in an op's label: see label_name.
  const Name own = label_name(ctx, label_kind_name(d));

  if (d.kind == LayerKind::flatten || d.kind == LayerKind::dropout) {
    return {in.tensor, out};
  }
  if (Op* p = fusable_producer(g, in.tensor)) {
    // batch_norm folds into a conv's weights, so only before any residual add or activation;
    // an activation applies last, so it may also follow a fused (or stand-alone) add.
    const bool no_act = p->act.kind == Act::none;
    const bool conv_like = p->kind == OpKind::conv || p->kind == OpKind::conv_transpose;
    const bool fuse_bn =
        d.kind == LayerKind::batch_norm && conv_like && p->bn < 0 && no_act && p->in2 < 0;
    const bool fuse_act = d.kind == LayerKind::activation && no_act &&
                          (conv_like || p->kind == OpKind::dense ||
                           p->kind == OpKind::batch_norm || p->kind == OpKind::add);
    if (fuse_bn || fuse_act) {
      if (fuse_bn) {
        p->bn = first_param;
        p->bn_eps = d.eps;
      } else {
        p->act = d.act;
      }
      // Written relative to the first part ("layer1.0.conv1+bn1", "1.conv0+bn1"); a layer
      // without a name of its own fused into a named one by its kind alone ("conv1+bn1+relu":
      // it is the named layer's activation, as torchvision's shared `relu` module).
      p->label.append("+");
      if (ctx.part != NamePart::named && p->named_label) {
        p->label.append(label_kind_name(d));
      } else {
        const std::string_view rel = relative_name(p->label.view(), own.view());
        p->label.append(rel.empty() ? label_kind_name(d) : rel);
      }
      p->flops += flops;
      return {in.tensor, out};  // the stored tensor keeps its producer's shape (flatten is a view)
    }
  }
  Op op{};
  op.layer = d;
  op.flops = flops;
  op.label = own;
  op.named_label = ctx.part == NamePart::named;
  switch (d.kind) {
    case LayerKind::conv: op.kind = OpKind::conv; break;
    case LayerKind::dense: op.kind = OpKind::dense; break;
    case LayerKind::batch_norm:
      op.kind = OpKind::batch_norm;
      op.bn = first_param;
      op.bn_eps = d.eps;
      break;
    case LayerKind::activation:
      op.kind = OpKind::activation;
      op.act = d.act;
      break;
    case LayerKind::max_pool: op.kind = OpKind::max_pool; break;
    case LayerKind::avg_pool: op.kind = OpKind::avg_pool; break;
    case LayerKind::global_avg_pool: op.kind = OpKind::global_avg_pool; break;
    case LayerKind::softmax: op.kind = OpKind::softmax; break;
    case LayerKind::log_softmax: op.kind = OpKind::log_softmax; break;
    case LayerKind::upsample: op.kind = OpKind::upsample; break;
    case LayerKind::conv_transpose: op.kind = OpKind::conv_transpose; break;
    case LayerKind::adaptive_avg_pool:
      // To 1x1 it is global average pooling, which every backend runs.
      op.kind = d.out_size == HW{1} ? OpKind::global_avg_pool : OpKind::adaptive_avg_pool;
      break;
    default: break;
  }
  if (op.kind == OpKind::conv || op.kind == OpKind::dense || op.kind == OpKind::conv_transpose) {
    op.weight = first_param;
    op.bias = d.bias ? first_param + 1 : -1;
  }
  return add_op(g, op, in, out);
}

/// Stores the row of a composite node whose parameters start at `r.first_param` and whose ops
/// start at `ops_before`, with its subtree's parameter and FLOP totals.
template <class G>
constexpr void set_composite_row(G& g, int row, LayerRow r, int ops_before) {
  r.param_count = g.num_params - r.first_param;
  for (int i = r.first_param; i < g.num_params; ++i) {
    r.params += g.params[i].spec.learnable ? g.params[i].spec.numel() : 0;
  }
  for (int i = ops_before; i < g.num_ops; ++i) {
    r.flops += g.ops[i].flops;
  }
  g.rows[row] = r;
}

template <class G, class... Ns>
constexpr Val visit_chain(G& g, Val in, const Ctx& ctx, Chain<Ns...>*) {
  int index = 0;
  [[maybe_unused]] const Name path = ctx.path();
  ((in = visit<Ns>(g, in, Ctx{path, Name().append_int(index++), NamePart::position, ctx.depth})),
   ...);
  return in;
}

/// Makes tensor `t` the slice of `base` from channel `c0` on; if `t` is a concat's output, its
/// slices move with it (they were made after tensor `first`: the first made inside the enclosing
/// concat for a branch's result, 0 for an input left in place). `t` stays `assembled` if it was:
/// its storage shape is still its declared one.
template <class G>
constexpr void make_view(G& g, int t, int base, int c0, int first) {
  for (int u = first; u < g.num_tensors; ++u) {
    if (g.tensors[u].view_of == t) {
      g.tensors[u].view_of = base;
      g.tensors[u].channel_offset += c0;
    }
  }
  g.tensors[t].view_of = base;
  g.tensors[t].channel_offset = c0;
}

/// Whether a concat whose identity branch is `t` (the concat's input) may leave `t` where it is,
/// as the slice of the concat's output from channel `c0` on, instead of copying it there: `t` was
/// written by an op (not the network's input), has storage of its own so far, fills whole
/// groups of 8 channels from a multiple of 8 on (16-bit NHWC storage reads it 16 bytes at a
/// time), has the output's height and width, and is read by nothing but pointwise ops of the
/// concat's other branches (ops from `ops_before` on) as their main input — those read a slice
/// in place in every backend. `uses` counts every read registered so far, the enclosing blocks'
/// (a residual, a gate, an outer concat) included, so any other reader shows; `branches` is how
/// many of the concat's branches return `t` itself (a second one would copy it from its new place).
template <class G>
constexpr bool identity_stays(const G& g, int t, int c0, Shape out, int ops_before, int branches) {
  const TensorEntry& e = g.tensors[t];
  if (branches != 1) {
    return false;
  }
  if (e.producer < 0 || e.view_of >= 0 || e.spec.shape.flat() || out.flat() ||
      e.spec.shape.c % 8 != 0 || c0 % 8 != 0 ||
      e.spec.shape.h != out.h || e.spec.shape.w != out.w) {
    return false;
  }
  int readers = 0;
  for (int i = ops_before; i < g.num_ops; ++i) {
    const Op& op = g.ops[i];
    if (op.in2 == t) {
      return false;
    }
    if (op.in == t) {
      if (op.kind != OpKind::batch_norm && op.kind != OpKind::activation) {
        return false;
      }
      ++readers;
    }
  }
  return e.uses == readers + 1;  // + the concat's own read, counted when it began
}

/// The context of a concat's branch `index`: by its own name when named, else by position.
template <class B>
constexpr Ctx branch_ctx(const Name& path, int index, int depth) {
  if constexpr (is_named_v<B>) {
    return Ctx{path, Name(B::name), NamePart::named, depth};
  } else {
    return Ctx{path, Name().append_int(index), NamePart::position, depth};
  }
}

/// Lowers concat(Bs...) at `ctx`: each branch from `in`; a branch whose result is a tensor its own
/// ops wrote and nothing read yet writes straight into its channel slice of the output (it becomes
/// a view); an identity branch whose input may stay where it is (identity_stays: a DenseNet
/// layer's running concatenation) becomes a view too, so its producers write it in place; any
/// other (an identity read by a conv, a flatten or dropout alone) is copied there by a `copy` op.
template <class G, class... Bs>
constexpr Val visit_concat(G& g, Val in, const Ctx& ctx, Concat<Bs...>*) {
  const int row = g.num_rows++;
  const int params_before = g.num_params;
  const int ops_before = g.num_ops;
  const int tensors_before = g.num_tensors;
  const Name path = ctx.path();
  // Every branch reads the block's input: count that read now, so that nothing at the start of a
  // branch fuses into (and changes) the op that produced it.
  g.tensors[in.tensor].uses += 1;
  constexpr int n = static_cast<int>(sizeof...(Bs));
  Val outs[n]{};
  Ctx ctxs[n]{};
  int index = 0;
  ((ctxs[index] = branch_ctx<Bs>(path, index, ctx.depth + 1),
    outs[index] = visit<Bs>(g, in, Ctx{path, Name().append_int(index), NamePart::position,
                                       ctx.depth + 1}),
    ++index),
   ...);
  const Shape first = outs[0].spec.shape;
  Shape joined = first;
  joined.c = 0;
  for (int i = 0; i < n; ++i) {
    joined.c += outs[i].spec.shape.c;
  }
  const TensorSpec out_spec{joined, in.spec.layout, in.spec.dtype};
  const int out = add_tensor(g, out_spec, -1);
  g.tensors[out].assembled = true;
  int first_writer = g.num_ops;
  int identities = 0;  // branches that return the input itself
  for (int i = 0; i < n; ++i) {
    identities += outs[i].tensor == in.tensor;
  }
  int c0 = 0;
  for (int i = 0; i < n; ++i) {
    const TensorEntry& b = g.tensors[outs[i].tensor];
    if (b.producer >= ops_before && b.uses == 0 && b.view_of < 0) {
      first_writer = std::min(first_writer, b.producer);
      make_view(g, outs[i].tensor, out, c0, tensors_before);
    } else if (outs[i].tensor == in.tensor && identity_stays(g, in.tensor, c0, joined, ops_before,
                                                           identities)) {
      first_writer = std::min(first_writer, b.producer);
      make_view(g, in.tensor, out, c0, 0);
    } else {
      Op op{};
      op.kind = OpKind::copy;
      op.label = ctxs[i].part == NamePart::named ? ctxs[i].path().dot("copy")
                                                 : label_name(ctxs[i], "copy");
      op.named_label = ctxs[i].part == NamePart::named;
      const Val v = add_op(g, op, outs[i], outs[i].spec);
      first_writer = std::min(first_writer, g.num_ops - 1);
      make_view(g, v.tensor, out, c0, tensors_before);
    }
    c0 += outs[i].spec.shape.c;
  }
  g.tensors[out].producer = first_writer;
  set_composite_row(
      g, row, LayerRow{path, "concat", {}, true, ctx.depth, in.spec, out_spec, params_before},
      ops_before);
  return {out, out_spec};
}

/// The context of a block's inner node (a residual's main branch, a gate) whose children are
/// named directly under the block at `ctx`: a chain numbers them under the block's path; a single
/// named node is a child of the block ("features.3" + named<"conv"> → "features.3.conv"); a single
/// unnamed layer stands for the block itself ("features.3.weight").
template <class Inner>
constexpr Ctx inner_ctx(const Ctx& ctx) {
  if constexpr (is_named_v<Inner>) {
    return Ctx{ctx.path(), Name(), NamePart::position, ctx.depth + 1};
  } else {
    return Ctx{ctx.parent, ctx.self, ctx.part, ctx.depth + 1};
  }
}

template <class N, class G>
constexpr Val visit(G& g, Val in, const Ctx& ctx) {
  if constexpr (LeafLayer<N>) {
    return visit_leaf<N>(g, in, ctx);
  } else if constexpr (std::is_same_v<N, Identity>) {
    return in;
  } else if constexpr (is_chain_v<N>) {
    // A chain inside a named scope or a residual: its children are numbered under its path.
    return visit_chain(g, in, ctx, static_cast<N*>(nullptr));
  } else if constexpr (is_concat_v<N>) {
    return visit_concat(g, in, ctx, static_cast<N*>(nullptr));
  } else if constexpr (is_multiply_v<N>) {
    return [&]<class Gate>(Multiply<Gate>*) {
      const int row = g.num_rows++;
      const int params_before = g.num_params;
      const int ops_before = g.num_ops;
      // The gate reads the block's input, and so does the product: nothing at the start of the
      // gate may fuse into the op that produced it.
      g.tensors[in.tensor].uses += 1;
      const Val gate = visit<Gate>(g, in, inner_ctx<Gate>(ctx));
      const Val out = add_elementwise_op(g, ctx, OpKind::multiply, "multiply", "+mul", in,
                                         gate.tensor);
      set_composite_row(
          g, row, LayerRow{ctx.path(), "multiply", {}, true, ctx.depth, in.spec, out.spec, params_before},
          ops_before);
      return out;
    }(static_cast<N*>(nullptr));
  } else if constexpr (is_sequential_v<N>) {
    // Its chain numbers its children under this node's own path ("features.3.0").
    const int row = g.num_rows++;
    const int params_before = g.num_params;
    const int ops_before = g.num_ops;
    const Val out =
        visit<typename N::chain>(g, in, Ctx{ctx.parent, ctx.self, ctx.part, ctx.depth + 1});
    set_composite_row(g, row, LayerRow{ctx.path(), "sequential", {}, true, ctx.depth, in.spec,
                                       out.spec, params_before},
                      ops_before);
    return out;
  } else if constexpr (is_named_v<N>) {
    return [&]<class Inner>(Inner*) {
      const Ctx named_ctx{ctx.parent, Name(N::name), NamePart::named, ctx.depth};
      if constexpr (is_chain_v<Inner>) {
        const int row = g.num_rows++;
        const int params_before = g.num_params;
        const int ops_before = g.num_ops;
        const Val out = visit<Inner>(g, in, Ctx{named_ctx.parent, named_ctx.self, NamePart::named,
                                                ctx.depth + 1});
        set_composite_row(g, row, LayerRow{named_ctx.path(), "sequential", {}, true, ctx.depth,
                                           in.spec, out.spec, params_before},
                          ops_before);
        return out;
      } else {
        return visit<Inner>(g, in, named_ctx);
      }
    }(static_cast<typename N::inner*>(nullptr));
  } else {
    static_assert(is_residual_v<N>);
    return [&]<class M, class S, ActDesc P>(Residual<M, S, P>*) {
      const int row = g.num_rows++;
      const int params_before = g.num_params;
      const int ops_before = g.num_ops;
      const Name path = ctx.path();
      // Both branches read the block's input: count that read now, so that no layer at the start
      // of either branch fuses into (and changes) the op that produced it.
      g.tensors[in.tensor].uses += 1;
      // The shortcut runs first so that its result exists when the main branch's last op adds
      // it; the main branch's children are named directly under the block.
      const Val s = visit<S>(g, in, Ctx{path, Name("shortcut"), NamePart::shortcut, ctx.depth + 1});
      const Val m = visit<M>(g, in, inner_ctx<M>(ctx));
      Val out = m;
      Op* p = fusable_producer(g, m.tensor);
      if (p != nullptr && p->kind == OpKind::conv && p->act.kind == Act::none && p->in2 < 0 &&
          s.tensor != m.tensor) {
        p->in2 = s.tensor;
        use_tensor(g, s.tensor, g.num_ops - 1);
        p->label.append("+add");
        p->flops += m.spec.shape.numel();
      } else {
        out = add_elementwise_op(g, ctx, OpKind::add, "residual", "+add", m, s.tensor);
        p = &g.ops[g.num_ops - 1];
      }
      if constexpr (P.kind != Act::none) {
        p->act = P;
        p->label.append("+");
        p->label.append(act_name(P.kind));
        p->flops += m.spec.shape.numel();
      }
      set_composite_row(
          g, row, LayerRow{path, "residual", {}, true, ctx.depth, in.spec, out.spec, params_before},
          ops_before);
      return out;
    }(static_cast<N*>(nullptr));
  }
}

/// Makes every op's label unique (profiles and NVTX ranges are keyed by it): a label already
/// taken by an earlier op gets "#2", "#3", ... — parameterless layers may share a user-given
/// name, as a PyTorch module called twice does ("pool", "pool#2"). A hash set of the labels so
/// far keeps this linear in the ops (all pairs would exceed clang's constexpr steps on DenseNet).
template <class G>
constexpr void make_labels_unique(G& g) {
  NameSet<static_cast<int>(std::extent_v<decltype(G::ops)>)> seen{};
  for (int i = 0; i < g.num_ops; ++i) {
    const Name base = g.ops[i].label;
    for (int n = 2; !seen.insert(g.ops[i].label.view()); ++n) {
      g.ops[i].label = base;
      g.ops[i].label.append("#").append_int(n);
    }
  }
}

template <class Body, TensorSpec In>
inline constexpr GraphCounts graph_capacity = NodeCounts<Body>::value + GraphCounts{0, 0, 0, 1};

}  // namespace detail

/// The lowered graph of the chain `Body` fed a tensor of type `In`. Its arrays are sized by upper
/// bounds known from the types alone; the num_* members say how much is used.
template <class Body, TensorSpec In>
consteval Graph<detail::graph_capacity<Body, In>> build_graph() {
  Graph<detail::graph_capacity<Body, In>> g{};
  g.input = detail::add_tensor(g, In, -1);
  const detail::Val out =
      detail::visit_chain(g, detail::Val{g.input, In}, detail::Ctx{}, static_cast<Body*>(nullptr));
  g.output = out.tensor;
  detail::make_labels_unique(g);
  return g;
}

}  // namespace strata
