#pragma once
// Shared by the static tests: whether every op label of a network is unique (profiles are keyed
// by it).
template <class Net>
constexpr bool labels_unique() {
  for (int a = 0; a < Net::graph.num_ops; ++a) {
    for (int b = a + 1; b < Net::graph.num_ops; ++b) {
      if (Net::graph.ops[a].label.view() == Net::graph.ops[b].label.view()) {
        return false;
      }
    }
  }
  return true;
}
