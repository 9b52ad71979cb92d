// config.json -> hf::Config: the architecture picks the family switches; sizes are validated.
// transformers 5 writes rope settings under "rope_parameters" (with rope_theta inside); older files
// use top-level "rope_theta" and "rope_scaling". Both are read.
#include <cmath>
#include <nlohmann/json.hpp>

#include "bna/hf.hpp"

namespace bna::hf {
namespace {

using json = nlohmann::json;

std::string S(int64_t v) { return std::to_string(v); }

int64_t get_int(const json& j, const char* key, int64_t dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_number_integer()) return -1;
  return it->get<int64_t>();
}
double get_num(const json& j, const char* key, double dflt) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return dflt;
  return it->get<double>();
}

}  // namespace

const char* family_name(Family f) {
  switch (f) {
    case Family::kGpt2: return "gpt2";
    case Family::kQwen2: return "qwen2";
    case Family::kQwen3: return "qwen3";
    case Family::kLlama: return "llama";
    case Family::kGlm4: return "glm4";
  }
  return "?";
}

const char* supported_architectures() {
  return "GPT2LMHeadModel, Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM, Glm4ForCausalLM";
}

Expected<AttnKind> parse_attn_kind(const std::string& s) {
  if (s == "dense") return AttnKind::kDense;
  if (s == "butterfly") return AttnKind::kButterfly;
  if (s == "compressed") return AttnKind::kCompressed;
  return invalid_argument("attention '" + s + "', expected dense, butterfly or compressed");
}

const char* attn_kind_name(AttnKind k) {
  switch (k) {
    case AttnKind::kDense: return "dense";
    case AttnKind::kButterfly: return "butterfly";
    case AttnKind::kCompressed: return "compressed";
  }
  return "?";
}

static Expected<Config> parse_impl(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("config.json: not a JSON object");
  Config c;
  auto arch = j.find("architectures");
  if (arch == j.end() || !arch->is_array() || arch->empty() || !(*arch)[0].is_string()) {
    return corrupt("config.json: no 'architectures' list");
  }
  c.architecture = (*arch)[0].get<std::string>();
  if (c.architecture == "GPT2LMHeadModel") c.family = Family::kGpt2;
  else if (c.architecture == "Qwen2ForCausalLM") c.family = Family::kQwen2;
  else if (c.architecture == "Qwen3ForCausalLM") c.family = Family::kQwen3;
  else if (c.architecture == "LlamaForCausalLM") c.family = Family::kLlama;
  else if (c.architecture == "Glm4ForCausalLM") c.family = Family::kGlm4;
  else return unimplemented("config.json: architecture '" + c.architecture + "', supported: " + supported_architectures());

  if (c.family == Family::kGpt2) {
    c.vocab = get_int(j, "vocab_size", -1);
    c.hidden = get_int(j, "n_embd", -1);
    c.layers = get_int(j, "n_layer", -1);
    c.n_heads = get_int(j, "n_head", -1);
    c.n_kv_heads = c.n_heads;
    c.intermediate = get_int(j, "n_inner", 4 * c.hidden);
    c.max_positions = get_int(j, "n_positions", -1);
    c.norm_eps = static_cast<float>(get_num(j, "layer_norm_epsilon", 1e-5));
    const std::string act = j.value("activation_function", "gelu_new");
    if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
      return unimplemented("config.json: activation_function '" + act + "', supported: gelu_new");
    }
    c.layer_norm = c.learned_pos = c.qkv_bias = c.o_bias = c.mlp_bias = c.gelu_mlp = true;
  } else {
    c.vocab = get_int(j, "vocab_size", -1);
    c.hidden = get_int(j, "hidden_size", -1);
    c.layers = get_int(j, "num_hidden_layers", -1);
    c.n_heads = get_int(j, "num_attention_heads", -1);
    c.n_kv_heads = get_int(j, "num_key_value_heads", c.n_heads);
    c.intermediate = get_int(j, "intermediate_size", -1);
    c.max_positions = get_int(j, "max_position_embeddings", 0);
    c.norm_eps = static_cast<float>(get_num(j, "rms_norm_eps", 1e-6));
    const std::string act = j.value("hidden_act", "silu");
    if (act != "silu") return unimplemented("config.json: hidden_act '" + act + "', supported: silu");
    const bool attn_bias = j.value("attention_bias", false);
    c.qkv_bias = c.family == Family::kQwen2 || attn_bias;
    c.o_bias = c.family == Family::kLlama && attn_bias;
    c.qk_norm = c.family == Family::kQwen3;
    c.sandwich_norm = c.fused_gate_up = c.rope_interleaved = c.family == Family::kGlm4;
  }
  for (auto [name, v] : {std::pair{"vocab_size", c.vocab}, {"hidden_size", c.hidden}, {"num_hidden_layers", c.layers},
                         {"num_attention_heads", c.n_heads}, {"num_key_value_heads", c.n_kv_heads},
                         {"intermediate_size", c.intermediate}}) {
    if (v < 1 || v > (int64_t{1} << 31)) return corrupt(std::string("config.json: ") + name + "=" + S(v) + ", expected a positive integer");
  }
  if (c.family == Family::kGpt2 && c.max_positions < 1) return corrupt("config.json: n_positions missing");
  if (c.n_heads % c.n_kv_heads != 0) {
    return corrupt("config.json: num_key_value_heads=" + S(c.n_kv_heads) + " does not divide num_attention_heads=" + S(c.n_heads));
  }
  const int64_t hd = get_int(j, "head_dim", 0);
  if (hd > 0) {
    c.head_dim = hd;
  } else {
    if (c.hidden % c.n_heads != 0) {
      return corrupt("config.json: num_attention_heads=" + S(c.n_heads) + " does not divide hidden_size=" + S(c.hidden));
    }
    c.head_dim = c.hidden / c.n_heads;
  }
  if (!c.learned_pos) {
    const json rp = j.contains("rope_parameters") && j["rope_parameters"].is_object() ? j["rope_parameters"]
                    : j.contains("rope_scaling") && j["rope_scaling"].is_object() ? j["rope_scaling"] : json::object();
    c.rope_theta = get_num(rp, "rope_theta", get_num(j, "rope_theta", 10000.0));
    std::string type = rp.value("rope_type", rp.value("type", std::string("default")));
    if (type == "llama3") {
      c.rope_llama3 = true;
      c.rope_factor = get_num(rp, "factor", 8.0);
      c.rope_low_freq_factor = get_num(rp, "low_freq_factor", 1.0);
      c.rope_high_freq_factor = get_num(rp, "high_freq_factor", 4.0);
      c.rope_original_max_positions = get_int(rp, "original_max_position_embeddings", 8192);
      if (!(c.rope_factor > 0) || !(c.rope_high_freq_factor > c.rope_low_freq_factor) || c.rope_original_max_positions < 1) {
        return corrupt("config.json: llama3 rope parameters out of range (factor " + std::to_string(c.rope_factor) +
                       ", low/high " + std::to_string(c.rope_low_freq_factor) + "/" +
                       std::to_string(c.rope_high_freq_factor) + ")");
      }
    } else if (type != "default") {
      return unimplemented("config.json: rope type '" + type + "', supported: default, llama3");
    }
    const double prf = get_num(rp, "partial_rotary_factor", get_num(j, "partial_rotary_factor", 1.0));
    c.rotary_dim = static_cast<int64_t>(std::llround(static_cast<double>(c.head_dim) * prf));
    if (c.rotary_dim < 2 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0) {
      return corrupt("config.json: rotary dim " + S(c.rotary_dim) + " (head_dim " + S(c.head_dim) +
                     " x partial_rotary_factor), expected an even number in [2, head_dim]");
    }
    if (!(c.rope_theta > 0)) return corrupt("config.json: rope_theta must be > 0");
  }
  auto eos = j.find("eos_token_id");
  if (eos != j.end()) {
    if (eos->is_number_integer()) c.eos_ids.push_back(eos->get<int32_t>());
    if (eos->is_array()) for (const json& e : *eos) if (e.is_number_integer()) c.eos_ids.push_back(e.get<int32_t>());
  }
  return c;
}

Expected<Config> parse_config(const std::string& text) {
  try {
    return parse_impl(text);
  } catch (const nlohmann::json::exception& e) {
    return corrupt(std::string("config.json: a field has the wrong type: ") + e.what());
  }
}

}  // namespace bna::hf
