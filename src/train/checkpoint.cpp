// GPT checkpoints in safetensors: weights by parameter name, AdamW moments under "optim.m." /
// "optim.v.", config and step in the metadata. Written atomically by bna::st::write.
#include <nlohmann/json.hpp>

#include <cstring>

#include "bna/safetensors.hpp"
#include "bna/train.hpp"

namespace bna::train {

namespace {
constexpr const char* kFormat = "gpt-checkpoint-1";
}

Status save_checkpoint(const std::string& path, const model::Gpt& m, const AdamW* opt, int64_t step,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<st::WriteTensor> ts;
  for (const model::ParamInfo& p : m.params())
    ts.push_back({p.name, st::Dtype::kF32, p.shape, m.weights() + p.offset});
  std::map<std::string, std::string> meta = metadata;
  if (opt != nullptr) {
    if (static_cast<int64_t>(opt->m.size()) != m.num_params())
      return invalid_argument("checkpoint: optimizer has " + std::to_string(opt->m.size()) + " moments for " +
                              std::to_string(m.num_params()) + " parameters");
    for (const model::ParamInfo& p : m.params()) {
      ts.push_back({"optim.m." + p.name, st::Dtype::kF32, p.shape, opt->m.data() + p.offset});
      ts.push_back({"optim.v." + p.name, st::Dtype::kF32, p.shape, opt->v.data() + p.offset});
    }
    nlohmann::ordered_json o;
    o["t"] = opt->t;
    o["beta1"] = opt->opt.beta1;
    o["beta2"] = opt->opt.beta2;
    o["eps"] = opt->opt.eps;
    o["weight_decay"] = opt->opt.weight_decay;
    meta["optim"] = o.dump();
  }
  meta["bna.format"] = kFormat;
  meta["config"] = model::config_to_json(m.config());
  meta["step"] = std::to_string(step);
  return st::write(path, ts, meta);
}

Expected<Checkpoint> load_checkpoint(const std::string& path, model::Gpt* model, AdamW* opt) {
  BNA_ASSIGN_OR_RETURN(st::File f, st::File::open(path));
  const auto& md = f.metadata();
  auto get = [&](const char* k) -> const std::string* {
    auto it = md.find(k);
    return it == md.end() ? nullptr : &it->second;
  };
  const std::string* fmt = get("bna.format");
  if (fmt == nullptr || *fmt != kFormat)
    return corrupt("checkpoint: " + path + " is not a GPT checkpoint (metadata bna.format=" +
                   (fmt ? *fmt : std::string("<missing>")) + ", expected " + kFormat + ")");
  Checkpoint ck;
  ck.metadata = md;
  const std::string* cfg = get("config");
  if (cfg == nullptr) return corrupt("checkpoint: " + path + " has no config");
  auto c = model::config_from_json(*cfg);
  if (!c) return corrupt("checkpoint: " + path + ": " + c.status().message());
  ck.config = *c;
  const std::string* step = get("step");
  try {
    ck.step = step ? std::stoll(*step) : -1;
  } catch (...) {
    ck.step = -1;
  }
  if (ck.step < 0) return corrupt("checkpoint: " + path + ": bad or missing step");
  auto load_into = [&](const std::string& name, const model::ParamInfo& p, float* dst) -> Status {
    const st::TensorInfo* t = f.find(name);
    if (t == nullptr) return corrupt("checkpoint: " + path + " has no tensor " + name);
    if (t->shape != p.shape) return corrupt("checkpoint: " + path + ": tensor " + name + " has the wrong shape for the config");
    return st::read_f32(*t, dst);
  };
  if (model != nullptr) {
    if (model::config_to_json(model->config()) != model::config_to_json(ck.config))
      return invalid_argument("checkpoint: " + path + " was written for config " + model::config_to_json(ck.config) +
                              " but the model has " + model::config_to_json(model->config()));
    for (const model::ParamInfo& p : model->params())
      BNA_RETURN_IF_ERROR(load_into(p.name, p, model->weights() + p.offset));
  }
  if (opt != nullptr) {
    if (model == nullptr) return invalid_argument("checkpoint: loading optimizer state needs the model");
    const std::string* o = get("optim");
    if (o == nullptr) return corrupt("checkpoint: " + path + " has no optimizer state (cannot resume from it)");
    nlohmann::json j = nlohmann::json::parse(*o, nullptr, false);
    if (j.is_discarded() || !j.contains("t") || !j["t"].is_number_integer())
      return corrupt("checkpoint: " + path + ": bad optimizer metadata");
    opt->t = j["t"].get<int64_t>();
    opt->m.assign(static_cast<size_t>(model->num_params()), 0.0f);
    opt->v.assign(static_cast<size_t>(model->num_params()), 0.0f);
    for (const model::ParamInfo& p : model->params()) {
      BNA_RETURN_IF_ERROR(load_into("optim.m." + p.name, p, opt->m.data() + p.offset));
      BNA_RETURN_IF_ERROR(load_into("optim.v." + p.name, p, opt->v.data() + p.offset));
    }
  }
  return ck;
}

Expected<model::Gpt> load_model(const std::string& path, Checkpoint* info) {
  BNA_ASSIGN_OR_RETURN(Checkpoint ck, load_checkpoint(path));
  BNA_ASSIGN_OR_RETURN(model::Gpt m, model::Gpt::create(ck.config));
  BNA_RETURN_IF_ERROR(load_checkpoint(path, &m).status());
  if (info != nullptr) *info = std::move(ck);
  return m;
}

}  // namespace bna::train
