#pragma once
/// Every tactic the engine may use, in one list: adding a way to run an op is its own header
/// under tactics/ and one line here. Order breaks ties between equal heuristic claims.
#include <vector>

#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/cudnn_conv.hpp"
#include "strata/cuda/tactics/direct_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"
#include "strata/cuda/tactics/lt_matmul.hpp"

namespace strata::cuda {

/// The tactics for precision P (stateless objects that live for the program).
template <DType P>
[[nodiscard]] const std::vector<const Tactic<P>*>& all_tactics() {
  static const tactics::DirectConv<P> direct_conv;
  static const tactics::LtConv1x1<P> lt_conv1x1;
  static const tactics::CudnnConv<P> cudnn_conv;
  static const tactics::LtDense<P> lt_dense;
  static const tactics::Pointwise<P> pointwise;
  static const tactics::Pool<P> pool;
  static const tactics::Softmax<P> softmax;
  static const std::vector<const Tactic<P>*> list{&direct_conv, &lt_conv1x1, &cudnn_conv,
                                                  &lt_dense,    &pointwise,  &pool,
                                                  &softmax};
  return list;
}

/// The tactic named `name` for precision P, or null.
template <DType P>
[[nodiscard]] const Tactic<P>* find_tactic(std::string_view name) {
  for (const Tactic<P>* t : all_tactics<P>()) {
    if (t->name() == name) {
      return t;
    }
  }
  return nullptr;
}

}  // namespace strata::cuda
