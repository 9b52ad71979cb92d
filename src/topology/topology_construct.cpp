// Topology::construct: cycles -> graph::build_heads -> meta -> graph::validate.
// Kept in its own translation unit so programs that only need cycles or perms do not pull in the row
// builder when linking the static library.
#include <string>

#include "bna/topology.hpp"

namespace bna::topo {

Expected<graph::GraphAbi> Topology::construct(int64_t T, const std::vector<Routing>* routing) const {
  if (T > INT32_MAX) return invalid_argument("topology: T=" + std::to_string(T) + ", expected T <= 2^31-1 (int32 ids)");
  BNA_ASSIGN_OR_RETURN(auto perms, cycles(T, routing));
  graph::RowRules rules;
  rules.T = T;
  rules.window = opt_.window;
  rules.landmark_stride = opt_.landmark_stride;
  rules.include_self = opt_.include_self;
  BNA_ASSIGN_OR_RETURN(graph::GraphAbi g, graph::build_heads(rules, perms));
  g.meta.strategy = strategy_name(opt_.strategy);
  g.meta.window = opt_.window;
  g.meta.landmark_stride = opt_.landmark_stride;
  g.meta.include_self = opt_.include_self;
  g.meta.seed = opt_.seed;
  g.meta.num_cycles = static_cast<int>(perms.empty() ? 0 : perms[0].size());
  g.meta.cycle_perms = std::move(perms);
  if (opt_.enforce_hamiltonian) {
    graph::ValidateOptions vo;
    vo.expect_heads = opt_.n_heads;
    vo.expect_tokens = T;
    vo.enforce_hamiltonian = true;
    BNA_RETURN_IF_ERROR(graph::validate(g, vo));
  }
  return g;
}

}  // namespace bna::topo
