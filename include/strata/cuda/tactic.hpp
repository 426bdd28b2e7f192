#pragma once
/// A tactic is one way to run an op on the GPU (cuDNN's legacy fused convolution, a cuBLASLt
/// matmul, Strata's direct convolution kernel, a pointwise kernel, ...), behind one small
/// interface: whether it applies to an op, the variant it would pick without timing, the
/// variants worth timing, and `prepare`, which makes a `Step` — the op ready to launch at one
/// batch size, with its workspace need. The tuner (tuner.hpp) chooses among tactics; the
/// executor (exec_plan.hpp) launches the steps. A tactic sees ops as `OpDesc` (storage.hpp),
/// never the network's type, so each is compiled once per precision.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/cuda/variant.hpp"

namespace strata::cuda {

/// The library handles of one execution context (every context owns its own, bound to its
/// stream).
struct Libraries {
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t lt = nullptr;
  bool tf32 = false;  ///< f32 math may use TF32 tensor cores (EngineOptions::allow_tf32; a tf32 engine)
  /// Measured tuning also times cuDNN graph-API candidates (EngineOptions::cudnn_graph_candidates).
  bool cudnn_graph = false;
};

/// Device pointers of one op at one batch size: arena tensors in the storage type, and the
/// caller's f32 output for an op that writes it (OpDesc::writes_user_output).
struct OpIo {
  const void* x = nullptr;
  const void* z = nullptr;  ///< the residual added before the activation, or null
  void* y = nullptr;
  void* pooled = nullptr;  ///< the fused pool's output (OpDesc::pool), or null
  float* user_out = nullptr;
  /// The arena's staging area (NetDesc::staging_offset): where an op whose concat slice its
  /// tactic cannot write puts its result before prepare_step's copy into the slice.
  void* staging = nullptr;
  /// For an op that reads the network's input: the caller's input as the engine received it
  /// (InputSource; its shape NetDesc::in_shape, its layout NetDesc::in_layout, or HWC for u8),
  /// else null. A step that reads this itself, converting and normalizing as it loads
  /// (Step::reads_network_input), spares the network its input step.
  const void* net_input = nullptr;
  InputFormat net_input_format = InputFormat::f32;
  bool net_input_hwc = false;
  const float* net_input_affine = nullptr;
  Shape net_input_shape{};  ///< as declared (NetDesc::in_shape), when net_input is set
  /// For a dense op with a folded global average pool (OpDesc::gap): the map the pool reads
  /// (io.x is then the pooled vector's slot), else null.
  const void* gap_in = nullptr;
  /// For a conv with a folded channel gate (OpDesc::gate): the map and the gate the multiply
  /// reads (io.x is then the product's slot), else null.
  const void* gate_x = nullptr;
  const void* gate = nullptr;
  /// For a conv with a side conv (OpDesc::side): where the side conv's result goes, and its
  /// weights; else null.
  void* side_y = nullptr;
  const OpWeights* side_weights = nullptr;
  /// For a depthwise conv with a folded expansion (OpDesc::expand): the expansion's input and
  /// weights (io.x is then the expanded map's slot); else null.
  const void* expand_x = nullptr;
  const OpWeights* expand_weights = nullptr;
  /// For a conv with a folded squeeze-excite gate (OpDesc::squeeze): the map the pool reads, the
  /// pooled vector's slot, and the first conv's weights (io.x is then the squeezed vector's
  /// slot); else null.
  const void* squeeze_x = nullptr;
  void* squeeze_pooled = nullptr;
  const OpWeights* squeeze_weights = nullptr;
  /// For a conv with a folded batch norm (OpDesc::norm): the batch norm's input (its first
  /// element: a concat slice's, where it reads one in place) and weights (io.x is then the
  /// normalized map's slot); else null.
  const void* norm_x = nullptr;
  const OpWeights* norm_weights = nullptr;
  /// For a conv with a folded bottleneck (OpDesc::bottleneck): the bottleneck's input slot (the
  /// normalized map's, where its batch norm runs as a pass), its batch norm's input (a concat
  /// slice's first element, where it reads one in place) and the two ops' weights (io.x is then
  /// the bottleneck output's slot); else null.
  const void* bottleneck_x = nullptr;
  const void* bottleneck_norm_x = nullptr;
  const OpWeights* bottleneck_weights = nullptr;
  const OpWeights* bottleneck_norm_weights = nullptr;
  /// A joined squeeze-excite op's buffers: its input slot (the squeezed vector's), its pooled
  /// vector's slot, its result's (the gate's: set for OpDesc::tail only — a gated conv's is
  /// OpIo::gate), its weights (the second 1×1 conv's) and its first conv's; else all null.
  struct Excite {
    void* squeezed = nullptr;
    void* pooled = nullptr;
    void* gate = nullptr;
    const OpWeights* weights = nullptr;
    const OpWeights* squeeze_weights = nullptr;
  };
  /// For a gated conv with a folded squeeze-excite op (OpDesc::excite; the map it pools is
  /// gate_x, the gate's slot gate).
  Excite excite;
  /// For a depthwise conv with a squeeze-excite op joined after it (OpDesc::tail; the map it
  /// pools is y).
  Excite tail;
  /// For a depthwise conv with the projection joined after it (OpDesc::project; its input is
  /// y, the depthwise conv's result's slot): the projection's result (the block's output), its
  /// residual (or null) and its weights; else all null.
  struct Project {
    void* y = nullptr;
    const void* z = nullptr;
    const OpWeights* weights = nullptr;
  };
  Project project;
};

/// A kernel a tactic compiles (NVRTC) when it prepares a step: the source, the instantiation's
/// name as written in it, and whether for the architecture's own features (sm_90a: wgmma).
struct KernelSource {
  std::string source;
  std::string name;
  bool arch_specific = false;
};

/// A variant a tactic would use without timing, and how strongly it claims the op: the tuner's
/// heuristic choice is the claim of lowest rank among applicable tactics.
struct Claim {
  Variant variant;
  int rank = 0;
};

/// Ranks of heuristic claims (lower wins).
namespace rank {
inline constexpr int only = 0;       ///< the one way Strata runs this kind of op
inline constexpr int joins = 4;      ///< one launch for a joined op's conv and side conv (OpDesc::side)
inline constexpr int tailored = 5;   ///< a Strata kernel that suits exactly this op's shape
inline constexpr int special = 10;   ///< a tactic made for this kind of op's shape
inline constexpr int library = 50;   ///< a library's own heuristic pick
inline constexpr int fallback = 90;  ///< when nothing else can run it
/// Added to a claim on an op whose producer's activation was deferred to it (OpDesc::in_act) by a
/// tactic that does not apply it on load (Tactic::reads_input_act): prepare_step then runs the
/// activation as a pass of its own first, so a tailored kernel that reads it wins the tie.
inline constexpr int extra_pass = 5;
}  // namespace rank

/// Whether `op` is a conv that runs as a GEMM over its storage as it is: one group, packed
/// channels in 8s (its input's pixels cp slots apart), filter rows of kh·kw·cp in the
/// reduction's (r, s, c) order (fcg = cp), as many filter rows as output slots, in 8s — what
/// tile_conv, splitk_conv and lt_im2col read.
[[nodiscard]] inline bool gemm_conv(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return op.kind == OpKind::conv && g.groups == 1 && g.packed && g.cp % 8 == 0 && g.fcg == g.cp &&
         op.in_cp == g.cp && g.kd == g.kp && g.kp % 8 == 0;
}

/// `part` added to a note of parts separated by "; " (describe()'s notes, tuning trials' notes);
/// an empty part adds nothing.
inline void add_note(std::string& note, std::string_view part) {
  if (!part.empty()) {
    note += note.empty() ? "" : "; ";
    note += part;
  }
}

/// One op prepared for one batch size: descriptors made, plans chosen. `launch` enqueues it.
class Step {
 public:
  virtual ~Step() = default;
  /// Bytes this step needs in the execution context's shared workspace.
  [[nodiscard]] virtual std::size_t workspace_bytes() const { return 0; }
  /// Enqueues the op on `s` (possibly under stream capture); `ws` is the shared workspace.
  /// Throws strata::Error (call, layer, library message) on failure.
  virtual void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) = 0;
  /// What runs the op, for Engine::describe ("cudnnConvolutionBiasActivationForward algo 1").
  [[nodiscard]] virtual std::string describe() const = 0;
  /// What measured tuning's table notes beside this step's time, where the variant's name does
  /// not say it ("engine 41": which cuDNN engine a graph configuration is).
  [[nodiscard]] virtual std::string tuning_note() const { return {}; }
  /// Whether the step stopped running the variant it was prepared with (a library declined it
  /// at run time and the step fell back): a timing of it does not count for that variant.
  [[nodiscard]] virtual bool fell_back() const { return false; }
  /// For a step that runs several ops in one kernel (the fused network): the time of each of its
  /// phases, µs, as the kernel itself measures them over `iters` launches; empty otherwise.
  [[nodiscard]] virtual std::vector<std::pair<std::string, float>> phases(cudaStream_t, int) {
    return {};
  }
  /// Whether a convolution and its epilogue run as one cuDNN call (EngineStats::convs_fused).
  [[nodiscard]] virtual bool library_fused() const { return false; }
  /// Whether the step reads the caller's input itself (OpIo::net_input) rather than the input
  /// step's conversion of it: when every reader of the input does, the plan has no input step.
  [[nodiscard]] virtual bool reads_network_input() const { return false; }
  /// Whether the step writes the caller's f32 output itself (OpIo::user_out, NCHW order) for an
  /// op whose result is the network's output (OpDesc::net_output): the plan then has no output
  /// step.
  [[nodiscard]] virtual bool writes_network_output() const { return false; }
};

/// Several steps run as one op (a conv, then its fused pool; a dense layer, then its softmax).
class StepSequence final : public Step {
 public:
  explicit StepSequence(std::vector<std::unique_ptr<Step>> parts) : parts_(std::move(parts)) {}
  [[nodiscard]] std::size_t workspace_bytes() const override {
    std::size_t b = 0;
    for (const auto& p : parts_) {
      b = std::max(b, p->workspace_bytes());
    }
    return b;
  }
  void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) override {
    for (const auto& p : parts_) {
      p->launch(s, ws, ws_bytes);
    }
  }
  [[nodiscard]] std::string describe() const override {
    std::ostringstream os;
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      os << (i > 0 ? ", then " : "") << parts_[i]->describe();
    }
    return os.str();
  }
  [[nodiscard]] bool reads_network_input() const override {
    return std::any_of(parts_.begin(), parts_.end(), [](const auto& p) { return p->reads_network_input(); });
  }
  [[nodiscard]] bool writes_network_output() const override {
    return !parts_.empty() && parts_.back()->writes_network_output();
  }
  [[nodiscard]] std::string tuning_note() const override {
    std::string note;
    for (const auto& p : parts_) {
      add_note(note, p->tuning_note());
    }
    return note;
  }
  [[nodiscard]] bool fell_back() const override {
    return std::any_of(parts_.begin(), parts_.end(), [](const auto& p) { return p->fell_back(); });
  }
  [[nodiscard]] bool library_fused() const override {
    return std::any_of(parts_.begin(), parts_.end(), [](const auto& p) { return p->library_fused(); });
  }

 private:
  std::vector<std::unique_ptr<Step>> parts_;
};

/// One way to run ops of some kind in precision P. Stateless: everything per op and batch
/// lives in the Step it prepares.
template <DType P>
class Tactic {
 public:
  virtual ~Tactic() = default;
  /// A short, stable name ("cudnn_conv"), stored in the tuning cache and shown by describe().
  [[nodiscard]] virtual std::string_view name() const = 0;
  /// Whether this tactic can run `op` at all (kind, geometry, precision).
  [[nodiscard]] virtual bool applicable(const OpDesc& op) const = 0;
  /// Whether this tactic reads `op`'s input in place when it is a concat's channel slice
  /// (OpDesc::in_slice: io.x points at the slice's first element; its strides are the slice's).
  [[nodiscard]] virtual bool reads_slice(const OpDesc&) const { return false; }
  /// Whether this tactic may run `op`: applicable, and reading its input where it lies.
  [[nodiscard]] bool runs(const OpDesc& op) const {
    return applicable(op) && (!op.in_slice || reads_slice(op));
  }
  /// Whether this tactic's steps apply OpDesc::in_act (the producer's deferred activation) to
  /// the input as they read it. Otherwise prepare_step (registry.hpp) applies it in place first.
  [[nodiscard]] virtual bool reads_input_act() const { return false; }
  /// Whether variant `v`'s steps run a conv's fused pool (OpDesc::pool) themselves, writing
  /// only the pooled map (OpIo::pooled). Otherwise prepare_step (registry.hpp) follows the conv
  /// with Strata's pool kernel over the unpooled map's arena slot.
  [[nodiscard]] virtual bool fuses_pool(const Variant&) const { return false; }
  /// Whether variant `v`'s steps run a dense layer's folded softmax (OpDesc::softmax)
  /// themselves, writing the caller's output (OpIo::user_out). Otherwise prepare_step follows
  /// the dense layer with Strata's softmax kernel over its output's arena slot.
  [[nodiscard]] virtual bool fuses_softmax(const Variant&) const { return false; }
  /// Whether variant `v`'s steps run a dense layer's folded global average pool (OpDesc::gap)
  /// themselves, reading the map (OpIo::gap_in). Otherwise prepare_step runs Strata's pool
  /// kernel into the dense layer's input slot (io.x) first.
  [[nodiscard]] virtual bool fuses_gap(const Variant&) const { return false; }
  /// Whether variant `v`'s steps run a conv's folded channel gate (OpDesc::gate) themselves,
  /// reading the map and the gate (OpIo::gate_x, OpIo::gate). Otherwise prepare_step runs
  /// Strata's channel-gate kernel into the conv's input slot (io.x) first.
  [[nodiscard]] virtual bool fuses_gate(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a conv's side conv (OpDesc::side) themselves, writing
  /// OpIo::side_y. Otherwise prepare_step runs the side conv first, as a step of its own.
  [[nodiscard]] virtual bool fuses_side(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a depthwise conv's folded expansion (OpDesc::expand)
  /// themselves, reading its input and weights (OpIo::expand_x, expand_weights). Otherwise
  /// prepare_step runs the expansion first, as a step of its own, into the conv's input slot.
  [[nodiscard]] virtual bool fuses_expand(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a conv's folded squeeze-excite gate (OpDesc::squeeze:
  /// the pool and the first conv) themselves, reading the map and the first conv's weights
  /// (OpIo::squeeze_x, squeeze_weights). Otherwise prepare_step runs the pool and the first conv
  /// first, as steps of their own, into their slots.
  [[nodiscard]] virtual bool fuses_squeeze(const Variant&) const { return false; }
  /// Whether variant `v`'s steps apply a conv's folded batch norm (OpDesc::norm) themselves as
  /// they read its input (OpIo::norm_x, norm_weights). Otherwise prepare_step runs the batch norm
  /// first, as a step of its own, into the conv's input slot.
  [[nodiscard]] virtual bool fuses_norm(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a conv's folded bottleneck (OpDesc::bottleneck: a 1×1
  /// conv with its batch norm) themselves, reading its input and weights (OpIo::bottleneck_*).
  /// Otherwise prepare_step runs the bottleneck first, as a step of its own, into the conv's
  /// input slot.
  [[nodiscard]] virtual bool fuses_bottleneck(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a gated conv's folded squeeze-excite op (OpDesc::excite:
  /// the pool of the gated map, both 1×1 convs, the gate) themselves, reading the map (OpIo::
  /// gate_x) and both convs' weights (OpIo::excite); such a
  /// variant fuses the gate too (fuses_gate). Otherwise prepare_step runs the squeeze-excite op
  /// first, as a step of its own, into the gate's slot (OpIo::gate).
  [[nodiscard]] virtual bool fuses_excite(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a depthwise conv's joined squeeze-excite op (OpDesc::
  /// tail: the pool of the conv's result, both 1×1 convs) themselves, writing the gate
  /// (OpIo::tail). Otherwise prepare_step runs the conv, then the squeeze-excite op as a step of
  /// its own.
  [[nodiscard]] virtual bool fuses_tail(const Variant&) const { return false; }
  /// Whether variant `v`'s steps compute a depthwise conv's joined projection (OpDesc::project:
  /// the 1×1 conv after it, with its residual) themselves, writing the block's output
  /// (OpIo::project) and not the depthwise conv's result. Otherwise prepare_step runs the
  /// depthwise conv, then the projection as a step of its own.
  [[nodiscard]] virtual bool fuses_project(const Variant&) const { return false; }
  /// Whether this tactic writes `op`'s result into its concat slice itself (OpDesc::slice:
  /// through the slice's strides, `write` slots per pixel; io.y, or io.pooled, points at the
  /// slice's first element). Otherwise prepare_step has the op write a dense result into the
  /// staging area and copies it into the slice.
  [[nodiscard]] virtual bool writes_slice(const OpDesc&) const { return false; }
  /// The variant this tactic would run `op` with at `batch` without timing, and its claim's
  /// rank; nothing when it does not claim the op untimed.
  [[nodiscard]] virtual std::optional<Claim> heuristic(const OpDesc& op, int batch,
                                                       std::size_t ws_limit,
                                                       const Libraries& lib) const = 0;
  /// Whether measured tuning times this tactic's candidates for `op` at `batch` at all: false
  /// where measurement showed the tactic cannot win on such shapes, to spare the tuning its
  /// compiles and timings (the variants still run when chosen otherwise: a tuning cache, a test).
  [[nodiscard]] virtual bool timed(const OpDesc&, int) const { return true; }
  /// The variants this tactic would run `op` with at `batch` within `ws_limit` workspace bytes:
  /// what measured tuning times (where timed() says so) and a tuning cache may name.
  [[nodiscard]] virtual std::vector<Variant> candidates(const OpDesc& op, int batch,
                                                        std::size_t ws_limit,
                                                        const Libraries& lib) const {
    auto h = heuristic(op, batch, ws_limit, lib);
    return h ? std::vector<Variant>{h->variant} : std::vector<Variant>{};
  }
  /// The kernels prepare() would compile for `op` with variant `v` on buffers `io` (nothing
  /// for a tactic whose kernels are a library's or Strata's precompiled ones, or where `v`
  /// cannot run `op`): so that the engine compiles those of many steps side by side first
  /// (generated::precompile), and each prepare() then finds its kernel compiled.
  [[nodiscard]] virtual std::vector<KernelSource> kernel_sources(const OpDesc&, const Variant&,
                                                                 const OpIo&) const {
    return {};
  }
  /// Whether kernel_sources() can return anything (so that callers ask only such tactics for
  /// their candidates ahead of time: a library's candidates cost queries).
  [[nodiscard]] virtual bool compiles_kernels() const { return false; }
  /// `op` prepared at `batch` with variant `v` on buffers `io`; throws strata::Error when the
  /// variant cannot run here (the caller then chooses another).
  [[nodiscard]] virtual std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v,
                                                      int batch, const OpWeights& w,
                                                      const OpIo& io,
                                                      const Libraries& lib) const = 0;
};

/// The device element type of precision P (float, __half, __nv_bfloat16).
template <DType P>
using storage_t = typename StorageOf<P>::type;

}  // namespace strata::cuda
