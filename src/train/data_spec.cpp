// Data specs: task / text / token-file sources turned into deterministic train and eval batch streams.
// Text is tokenized once in memory (byte, char, or a Hugging Face tokenizer.json such as GPT-2's
// byte-level BPE) and split contiguously (validation last).
#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/rng.hpp"
#include "bna/train.hpp"

namespace bna::train {

namespace {
std::string S(int64_t v) { return std::to_string(v); }
constexpr uint64_t kEvalStream = 0x5eed0e7a1ull;  // eval batches come from mix_seed(seed, kEvalStream)
}  // namespace

std::string data_spec_to_json(const DataSpec& d) {
  nlohmann::ordered_json j;
  j["kind"] = d.kind;
  if (d.kind == "task") {
    j["task"] = data::task_name(d.task.kind);
    j["T"] = d.task.T;
    j["digits"] = d.task.digits;
    j["pairs"] = d.task.pairs;
    j["queries"] = d.task.queries;
    j["copy_len"] = d.task.copy_len;
  } else {
    j["path"] = d.path;
    if (d.kind == "text") j["tokenizer"] = d.tokenizer;
    j["val_fraction"] = d.val_fraction;
  }
  return j.dump();
}

Expected<DataSpec> data_spec_from_json(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j["kind"].is_string())
    return corrupt("data spec: not a JSON object with a 'kind'");
  DataSpec d;
  d.kind = j["kind"].get<std::string>();
  try {
    if (d.kind == "task") {
      BNA_ASSIGN_OR_RETURN(d.task.kind, data::parse_task(j.at("task").get<std::string>()));
      d.task.T = j.at("T").get<int64_t>();
      d.task.digits = j.at("digits").get<int64_t>();
      d.task.pairs = j.at("pairs").get<int64_t>();
      d.task.queries = j.at("queries").get<int64_t>();
      d.task.copy_len = j.at("copy_len").get<int64_t>();
    } else {
      d.path = j.at("path").get<std::string>();
      if (d.kind == "text") d.tokenizer = j.at("tokenizer").get<std::string>();
      d.val_fraction = j.at("val_fraction").get<double>();
    }
  } catch (const std::exception& e) {
    return corrupt(std::string("data spec: missing or mistyped field (") + e.what() + ")");
  }
  return d;
}

Expected<std::unique_ptr<tok::Tokenizer>> tokenizer_from_state(std::string_view state) {
  if (state == "byte") return tok::byte_tokenizer();
  if (state.substr(0, 5) == "char:") return tok::char_tokenizer(state.substr(5));
  if (state.substr(0, 5) == "json:") return tok::parse_tokenizer_json(state.substr(5));
  return invalid_argument("tokenizer state '" + std::string(state.substr(0, 16)) +
                          "', expected byte, char:<chars> or json:<tokenizer.json text>");
}

Expected<DataStreams> open_data(const DataSpec& d, int64_t B, int64_t T, uint64_t seed) {
  if (B < 1 || T < 1) return invalid_argument("data: B=" + S(B) + " T=" + S(T) + ", expected >= 1");
  DataStreams ds;
  const uint64_t eval_seed = mix_seed(seed, kEvalStream);
  if (d.kind == "task") {
    data::TaskOptions t = d.task;
    t.T = T;
    BNA_RETURN_IF_ERROR(data::validate_task(t));
    ds.is_task = true;
    ds.vocab_size = data::kTaskVocab;
    ds.train_fn = [t, B, seed](uint64_t i, data::Batch& b) { return data::task_batch(t, B, seed, i, b); };
    ds.eval_fn = [t, B, eval_seed](uint64_t i, data::Batch& b) { return data::task_batch(t, B, eval_seed, i, b); };
    return ds;
  }
  std::vector<int32_t> tokens;
  if (d.kind == "text") {
    BNA_ASSIGN_OR_RETURN(std::string text, io::read_file(d.path));
    if (text.empty()) return invalid_argument("data: text file " + d.path + " is empty");
    if (d.tokenizer == "byte") {
      ds.tokenizer = tok::byte_tokenizer();
      ds.tokenizer_state = "byte";
    } else if (d.tokenizer == "char") {
      BNA_ASSIGN_OR_RETURN(ds.tokenizer, tok::char_tokenizer(text));
      std::string chars;
      for (int32_t id = 0; id < ds.tokenizer->vocab_size(); ++id) chars += ds.tokenizer->decode(std::vector<int32_t>{id});
      ds.tokenizer_state = "char:" + chars;
    } else if (d.tokenizer.rfind("json:", 0) == 0) {
      // The file's text becomes the state, so a checkpoint carries its own tokenizer.
      BNA_ASSIGN_OR_RETURN(std::string json_text, io::read_file(d.tokenizer.substr(5)));
      BNA_ASSIGN_OR_RETURN(ds.tokenizer, tok::parse_tokenizer_json(json_text));
      ds.tokenizer_state = "json:" + json_text;
    } else {
      return invalid_argument("data: tokenizer '" + d.tokenizer + "', expected byte, char or json:<path to tokenizer.json>");
    }
    BNA_ASSIGN_OR_RETURN(tokens, ds.tokenizer->try_encode(text));
    ds.vocab_size = ds.tokenizer->vocab_size();
  } else if (d.kind == "tokens") {
    BNA_ASSIGN_OR_RETURN(auto src, data::open_token_file(d.path));
    tokens.resize(static_cast<size_t>(src->size()));
    for (int64_t i = 0; i < src->size(); ++i) tokens[i] = src->at(i);
    ds.vocab_size = src->vocab_size();
    for (int32_t x : tokens) ds.vocab_size = std::max<int64_t>(ds.vocab_size, int64_t{x} + 1);
  } else {
    return invalid_argument("data: kind '" + d.kind + "', expected task, text or tokens");
  }
  if (tokens.empty()) return invalid_argument("data: " + d.path + " holds no tokens");
  BNA_ASSIGN_OR_RETURN(data::Split sp, data::split_tokens(tokens, d.val_fraction));
  if (static_cast<int64_t>(sp.val.size()) < T + 1 || static_cast<int64_t>(sp.train.size()) < T + 1)
    return invalid_argument("data: " + d.path + " gives " + S(static_cast<int64_t>(sp.train.size())) + " train and " +
                            S(static_cast<int64_t>(sp.val.size())) + " validation tokens, expected at least T + 1 = " +
                            S(T + 1) + " in each (use a larger file or a smaller --T)");
  ds.train = data::memory_tokens(std::move(sp.train), ds.vocab_size);
  ds.val = data::memory_tokens(std::move(sp.val), ds.vocab_size);
  auto tr = ds.train, va = ds.val;
  ds.train_fn = [tr, B, T, seed](uint64_t i, data::Batch& b) { return data::lm_batch(*tr, B, T, seed, i, b); };
  ds.eval_fn = [va, B, T, eval_seed](uint64_t i, data::Batch& b) { return data::lm_batch(*va, B, T, eval_seed, i, b); };
  return ds;
}

}  // namespace bna::train
