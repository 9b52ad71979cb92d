// GPT configuration: validation, the AttnSpec text form ("graph:w=64,s=64,c=1") and JSON (stored in
// checkpoints next to the weights). Unknown keys are errors, never ignored.
#include <nlohmann/json.hpp>

#include <charconv>

#include "bna/model.hpp"
#include "bna/topology.hpp"

namespace bna::model {

namespace {
std::string S(int64_t v) { return std::to_string(v); }

Expected<int64_t> parse_int(std::string_view key, std::string_view v) {
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    return invalid_argument("attention spec: " + std::string(key) + "=" + std::string(v) + ", expected an integer");
  return out;
}
}  // namespace

const char* attn_kind_name(AttnKind k) {
  switch (k) {
    case AttnKind::kDense: return "dense";
    case AttnKind::kGraph: return "graph";
    case AttnKind::kBlock: return "block";
  }
  return "unknown";
}

std::string attn_spec_string(const AttnSpec& s) {
  switch (s.kind) {
    case AttnKind::kDense: return "dense";
    case AttnKind::kGraph: {
      std::string r = "graph:w=" + S(s.window) + ",s=" + S(s.landmark_stride) + ",c=" + S(s.cycles);
      if (s.cycles > 0) r += ",strategy=" + s.strategy;
      if (!s.path.empty()) r += ",path=" + s.path;
      return r;
    }
    case AttnKind::kBlock:
      return "block:bs=" + S(s.block_size) + ",rule=" + s.rule + ",p=" + S(s.partner_count) +
             ",local=" + S(s.local_blocks) + ",sink=" + S(s.sink_count);
  }
  return "unknown";
}

Expected<AttnSpec> parse_attn_spec(std::string_view text) {
  AttnSpec s;
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (kind == "dense") s.kind = AttnKind::kDense;
  else if (kind == "graph") s.kind = AttnKind::kGraph;
  else if (kind == "block") s.kind = AttnKind::kBlock;
  else
    return invalid_argument("attention spec: kind '" + std::string(kind) + "', expected dense, graph:... or block:...");
  if (s.kind == AttnKind::kDense && !rest.empty())
    return invalid_argument("attention spec: 'dense' takes no parameters, got '" + std::string(rest) + "'");
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return invalid_argument("attention spec: item '" + std::string(item) + "', expected key=value");
    const std::string_view key = item.substr(0, eq), val = item.substr(eq + 1);
    auto num = [&](int64_t& dst) -> Status {
      BNA_ASSIGN_OR_RETURN(dst, parse_int(key, val));
      return Status::ok();
    };
    if (s.kind == AttnKind::kGraph) {
      if (key == "w") BNA_RETURN_IF_ERROR(num(s.window));
      else if (key == "s") BNA_RETURN_IF_ERROR(num(s.landmark_stride));
      else if (key == "c") BNA_RETURN_IF_ERROR(num(s.cycles));
      else if (key == "strategy") s.strategy = std::string(val);
      else if (key == "path") s.path = std::string(val);
      else return invalid_argument("attention spec: graph key '" + std::string(key) + "', expected w, s, c, strategy or path");
    } else {
      if (key == "bs") BNA_RETURN_IF_ERROR(num(s.block_size));
      else if (key == "rule") s.rule = std::string(val);
      else if (key == "p") BNA_RETURN_IF_ERROR(num(s.partner_count));
      else if (key == "local") BNA_RETURN_IF_ERROR(num(s.local_blocks));
      else if (key == "sink") BNA_RETURN_IF_ERROR(num(s.sink_count));
      else return invalid_argument("attention spec: block key '" + std::string(key) + "', expected bs, rule, p, local or sink");
    }
  }
  if (s.kind == AttnKind::kGraph) {
    if (s.window < 0) return invalid_argument("attention spec: w=" + S(s.window) + ", expected w >= 0");
    if (s.landmark_stride < 0) return invalid_argument("attention spec: s=" + S(s.landmark_stride) + ", expected s >= 0");
    if (s.cycles < 0) return invalid_argument("attention spec: c=" + S(s.cycles) + ", expected c >= 0");
    auto st = topo::parse_strategy(s.strategy);
    if (!st) return st.status();
    if (topo::strategy_needs_routing(*st))
      return invalid_argument("attention spec: strategy=" + s.strategy + " needs routing vectors, which the GPT does not provide; use random, regular_partition, edge_disjoint or covering");
    if (!s.path.empty()) {
      auto p = attn::parse_path(s.path);
      if (!p) return p.status();
    }
  } else if (s.kind == AttnKind::kBlock) {
    if (s.block_size < 1) return invalid_argument("attention spec: bs=" + S(s.block_size) + ", expected bs >= 1");
    auto r = topo::parse_partner_rule(s.rule);
    if (!r) return r.status();
    if (s.partner_count < 0 || s.local_blocks < 0 || s.sink_count < 0)
      return invalid_argument("attention spec: block counts p, local, sink must be >= 0");
  }
  return s;
}

Status validate_config(const GptConfig& c) {
  if (c.vocab_size < 1) return invalid_argument("gpt: vocab_size=" + S(c.vocab_size) + ", expected >= 1");
  if (c.seq_len < 1) return invalid_argument("gpt: seq_len=" + S(c.seq_len) + ", expected >= 1");
  if (c.n_layers < 1) return invalid_argument("gpt: n_layers=" + S(c.n_layers) + ", expected >= 1");
  if (c.n_heads < 1) return invalid_argument("gpt: n_heads=" + S(c.n_heads) + ", expected >= 1");
  const int64_t hkv = c.n_kv_heads == 0 ? c.n_heads : c.n_kv_heads;
  if (hkv < 1 || c.n_heads % hkv != 0)
    return invalid_argument("gpt: n_kv_heads=" + S(c.n_kv_heads) + ", expected a divisor of n_heads=" + S(c.n_heads));
  if (c.d_model < 1 || c.d_model % c.n_heads != 0)
    return invalid_argument("gpt: d_model=" + S(c.d_model) + ", expected a positive multiple of n_heads=" + S(c.n_heads));
  if (!c.attn.empty() && c.attn.size() != 1 && static_cast<int64_t>(c.attn.size()) != c.n_layers)
    return invalid_argument("gpt: " + S(static_cast<int64_t>(c.attn.size())) + " attention specs for n_layers=" +
                            S(c.n_layers) + ", expected 1 or n_layers");
  for (const AttnSpec& a : c.attn) {
    auto re = parse_attn_spec(attn_spec_string(a));  // re-validates the fields
    if (!re) return re.status();
  }
  return Status::ok();
}

std::string config_to_json(const GptConfig& c) {
  nlohmann::ordered_json j;
  j["vocab_size"] = c.vocab_size;
  j["seq_len"] = c.seq_len;
  j["n_layers"] = c.n_layers;
  j["n_heads"] = c.n_heads;
  j["n_kv_heads"] = c.n_kv_heads;
  j["d_model"] = c.d_model;
  j["seed"] = c.seed;
  j["attn"] = nlohmann::json::array();
  for (const AttnSpec& a : c.attn) j["attn"].push_back(attn_spec_string(a));
  return j.dump();
}

Expected<GptConfig> config_from_json(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("gpt config: not a JSON object");
  GptConfig c;
  const char* keys[] = {"vocab_size", "seq_len", "n_layers", "n_heads", "n_kv_heads", "d_model"};
  int64_t* dst[] = {&c.vocab_size, &c.seq_len, &c.n_layers, &c.n_heads, &c.n_kv_heads, &c.d_model};
  for (int i = 0; i < 6; ++i) {
    if (!j.contains(keys[i]) || !j[keys[i]].is_number_integer())
      return corrupt(std::string("gpt config: missing or non-integer '") + keys[i] + "'");
    *dst[i] = j[keys[i]].get<int64_t>();
  }
  if (!j.contains("seed") || !j["seed"].is_number_unsigned()) return corrupt("gpt config: missing or bad 'seed'");
  c.seed = j["seed"].get<uint64_t>();
  if (!j.contains("attn") || !j["attn"].is_array()) return corrupt("gpt config: missing 'attn' array");
  for (const auto& a : j["attn"]) {
    if (!a.is_string()) return corrupt("gpt config: 'attn' entries must be strings");
    auto s = parse_attn_spec(a.get<std::string>());
    if (!s) return s.status();
    c.attn.push_back(*s);
  }
  BNA_RETURN_IF_ERROR(validate_config(c));
  return c;
}

}  // namespace bna::model
