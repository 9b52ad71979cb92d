// Syntax tree -> GraphSpec IR (the semantic half of the front end), schedules, and the IR's JSON dump.
// Every section and schedule form of the original grammar is accepted; what the original silently
// ignored or mis-read is an error here, pointing at the node: unknown sections and keys, duplicate
// sections and keys, stray atoms, a quoted number, a float where an integer is required, a bare
// ":flag" in front of another key (it is a flag, it no longer swallows the key).
#include <cmath>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/spec.hpp"

namespace bna::spec {
namespace {

std::string kind_name(const Node& n) {
  switch (n.kind) {
    case NodeKind::kList: return "a list";
    case NodeKind::kSymbol: return "symbol '" + n.text + "'";
    case NodeKind::kKeyword: return "key '" + n.text + "'";
    case NodeKind::kInt:
    case NodeKind::kFloat: return "number " + n.text;
    case NodeKind::kString: return "string \"" + n.text + "\"";
    case NodeKind::kComment: return "a comment";
  }
  return "?";
}

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool is_symbol(const Node& n, std::initializer_list<const char*> names) {
  if (n.kind != NodeKind::kSymbol) return false;
  const std::string l = lower_ascii(n.text);
  for (const char* s : names)
    if (l == s) return true;
  return false;
}

bool is_null(const Node& n) { return is_symbol(n, {"none", "nil", "off"}); }

// One ":key value" entry; value == nullptr for a bare flag.
struct KeyValue {
  const Node* key;
  const Node* value;
  std::string name;  // without ':'
};

class Builder {
 public:
  explicit Builder(const Document& d) : doc_(d) { spec_.source_name = d.source_name; }

  Expected<GraphSpec> run() {
    const Node& root = doc_.root();
    auto items = semantic(root);
    if (items.empty() || !is_symbol(*items[0], {"butterfly", "wayfinder"}))
      return err(items.empty() ? root.loc : items[0]->loc,
                 "the spec must start with (butterfly ...) (or the legacy (wayfinder ...)), got " +
                     (items.empty() ? std::string("()") : kind_name(*items[0])));
    std::map<std::string, SourceLoc> seen;
    for (size_t i = 1; i < items.size(); ++i) {
      const Node& sec = *items[i];
      if (sec.kind != NodeKind::kList)
        return err(sec.loc, "expected a section such as (backbone ...), got " + kind_name(sec));
      auto parts = semantic(sec);
      if (parts.empty() || parts[0]->kind != NodeKind::kSymbol)
        return err(sec.loc, "a section must start with its name, e.g. (local (window :size 64))");
      const std::string tag = parts[0]->text;
      if (auto it = seen.find(tag); it != seen.end())
        return err(sec.loc, "duplicate section (" + tag + "), first given at " + at(it->second));
      seen[tag] = sec.loc;
      Status st;
      if (tag == "degree") st = degree(sec, parts);
      else if (tag == "backbone") st = backbone(sec, parts);
      else if (tag == "local") st = local(sec, parts);
      else if (tag == "highways") st = highways(sec, parts);
      else if (tag == "bias") st = bias(sec, parts);
      else if (tag == "permute_window") st = permute_window(sec, parts);
      else
        st = err(parts[0]->loc, "unknown section (" + tag +
                                    "), expected one of: backbone, bias, degree, highways, local, permute_window");
      BNA_RETURN_IF_ERROR(st);
    }
    return spec_;
  }

 private:
  static std::string at(SourceLoc l) { return std::to_string(l.line) + ":" + std::to_string(l.col); }
  Status err(SourceLoc l, const std::string& what) const {
    return invalid_argument(doc_.source_name + ":" + at(l) + ": " + what);
  }

  static std::vector<const Node*> semantic(const Node& list) {
    std::vector<const Node*> v;
    for (const Node& c : list.items)
      if (c.kind != NodeKind::kComment) v.push_back(&c);
    return v;
  }

  // (tag (head kv...)): exactly one sub-form with the given head.
  Expected<std::vector<const Node*>> sub_form(const Node& sec, const std::vector<const Node*>& parts,
                                              const char* head, const char* example) {
    if (parts.size() != 2 || parts[1]->kind != NodeKind::kList)
      return err(parts.size() > 2 ? parts[2]->loc : sec.loc,
                 "(" + parts[0]->text + ") takes exactly one (" + head + " ...) form, e.g. " + example);
    auto inner = semantic(*parts[1]);
    if (inner.empty() || !is_symbol(*inner[0], {head}))
      return err(inner.empty() ? parts[1]->loc : inner[0]->loc,
                 "(" + parts[0]->text + ") takes (" + head + " ...), got " +
                     (inner.empty() ? std::string("()") : kind_name(*inner[0])) + "; e.g. " + example);
    return inner;
  }

  // Keyword tail starting at elems[from]. A key followed by another key (or nothing) is a flag.
  Expected<std::vector<KeyValue>> keywords(const std::vector<const Node*>& elems, size_t from,
                                           const std::set<std::string>& allowed, const std::string& form) {
    std::vector<KeyValue> out;
    std::map<std::string, SourceLoc> seen;
    for (size_t i = from; i < elems.size(); ++i) {
      const Node& k = *elems[i];
      if (k.kind != NodeKind::kKeyword)
        return err(k.loc, "expected a :key in (" + form + " ...), got " + kind_name(k));
      const std::string name = k.text.substr(1);
      if (!allowed.count(name)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? ":" : ", :") + a;
        return err(k.loc, "unknown key " + k.text + " in (" + form + " ...), expected one of: " + list);
      }
      if (auto it = seen.find(name); it != seen.end())
        return err(k.loc, "duplicate key " + k.text + " in (" + form + " ...), first given at " + at(it->second));
      seen[name] = k.loc;
      const Node* v = nullptr;
      if (i + 1 < elems.size() && elems[i + 1]->kind != NodeKind::kKeyword) v = elems[++i];
      out.push_back({&k, v, name});
    }
    return out;
  }

  Status need_value(const KeyValue& kv, const char* what) {
    if (!kv.value) return err(kv.key->loc, kv.key->text + " needs a value (" + what + ")");
    return Status::ok();
  }

  Expected<int64_t> integer(const KeyValue& kv, const char* what = "an integer") {
    BNA_RETURN_IF_ERROR(need_value(kv, what));
    if (kv.value->kind != NodeKind::kInt)
      return err(kv.value->loc, "expected " + std::string(what) + " for " + kv.key->text + ", got " +
                                    kind_name(*kv.value));
    return kv.value->int_value;
  }

  Expected<double> number(const Node& n, const std::string& what) {
    if (n.kind == NodeKind::kInt) return static_cast<double>(n.int_value);
    if (n.kind == NodeKind::kFloat) return n.float_value;
    return err(n.loc, "expected a number for " + what + ", got " + kind_name(n));
  }

  Expected<bool> boolean(const KeyValue& kv) {
    if (!kv.value) return true;  // bare flag
    if (is_symbol(*kv.value, {"true", "on", "yes"})) return true;
    if (is_symbol(*kv.value, {"false", "off", "no"})) return false;
    return err(kv.value->loc, "expected true or false for " + kv.key->text + ", got " + kind_name(*kv.value));
  }

  // (schedule :linear START END [:steps N]) | (schedule :constant V); the kind may omit the ':'.
  Expected<Schedule> schedule(const Node& n, const std::string& what) {
    auto e = semantic(n);
    if (e.empty() || !is_symbol(*e[0], {"schedule"}))
      return err(n.loc, "expected (schedule ...) for " + what + ", got " +
                            (e.empty() ? std::string("()") : "(" + e[0]->text + " ...)"));
    if (e.size() < 2) return err(n.loc, "(schedule) needs a kind: :linear START END :steps N, or :constant V");
    const Node& k = *e[1];
    std::string kind = (k.kind == NodeKind::kKeyword) ? k.text.substr(1) : k.kind == NodeKind::kSymbol ? k.text : "";
    Schedule s;
    if (kind == "linear") {
      if (e.size() < 4) return err(k.loc, "linear schedule needs START END, e.g. (schedule :linear 64 16 :steps 2000)");
      BNA_ASSIGN_OR_RETURN(s.start, number(*e[2], what + " start"));
      BNA_ASSIGN_OR_RETURN(s.end, number(*e[3], what + " end"));
      s.kind = Schedule::Kind::kLinear;
      BNA_ASSIGN_OR_RETURN(auto kvs, keywords(e, 4, {"steps"}, "schedule"));
      for (const auto& kv : kvs) {
        BNA_ASSIGN_OR_RETURN(s.steps, integer(kv, "an integer >= 1"));
      }
      if (s.steps < 1) return err(kvs.back().value->loc, ":steps=" + std::to_string(s.steps) + ", expected >= 1");
      return s;
    }
    if (kind == "constant" || kind == "const") {
      if (e.size() != 3) return err(k.loc, "constant schedule takes exactly one value: (schedule :constant V)");
      BNA_ASSIGN_OR_RETURN(double v, number(*e[2], what));
      s.start = s.end = v;
      return s;
    }
    return err(k.loc, "unknown schedule kind " + kind_name(k) + ", expected :linear or :constant");
  }

  void mark(const char* field, SourceLoc l) { spec_.locs[field] = l; }

  Status degree(const Node& sec, const std::vector<const Node*>& p) {
    if (p.size() != 2 || p[1]->kind != NodeKind::kInt)
      return err(p.size() >= 2 ? p[1]->loc : sec.loc, "(degree N) takes one integer, e.g. (degree 128)");
    spec_.degree = p[1]->int_value;
    mark("degree", p[1]->loc);
    return Status::ok();
  }

  Status backbone(const Node& sec, const std::vector<const Node*>& p) {
    BNA_ASSIGN_OR_RETURN(auto e, sub_form(sec, p, "cycle", "(backbone (cycle :type random :seed 42 :k 2))"));
    BNA_ASSIGN_OR_RETURN(auto kvs, keywords(e, 1,
                                            {"type", "seed", "k", "edge_disjoint", "clusters", "coverage", "routing",
                                             "routing_dim", "routing_seed"},
                                            "cycle"));
    for (const auto& kv : kvs) {
      const std::string& n = kv.name;
      if (n == "type") {
        BNA_RETURN_IF_ERROR(need_value(kv, "a strategy name"));
        if (kv.value->kind != NodeKind::kSymbol && kv.value->kind != NodeKind::kString)
          return err(kv.value->loc, "expected a strategy name for :type, got " + kind_name(*kv.value));
        auto s = topo::parse_strategy(kv.value->text);
        if (!s) return err(kv.value->loc, s.status().message());
        spec_.strategy = *s;
        mark("strategy", kv.value->loc);
      } else if (n == "seed" || n == "routing_seed") {
        BNA_ASSIGN_OR_RETURN(int64_t v, integer(kv, "an integer >= 0"));
        if (v < 0) return err(kv.value->loc, kv.key->text + "=" + std::to_string(v) + ", expected >= 0");
        if (n == "seed") {
          spec_.seed = static_cast<uint64_t>(v);
        } else {
          spec_.routing.seed = static_cast<uint64_t>(v);
          spec_.routing.seed_set = true;
        }
        mark(n == "seed" ? "seed" : "routing_seed", kv.value->loc);
      } else if (n == "k") {
        BNA_ASSIGN_OR_RETURN(spec_.num_cycles, integer(kv));
        mark("num_cycles", kv.value->loc);
      } else if (n == "edge_disjoint") {
        BNA_ASSIGN_OR_RETURN(spec_.edge_disjoint, boolean(kv));
        mark("edge_disjoint", kv.value ? kv.value->loc : kv.key->loc);
      } else if (n == "clusters") {
        BNA_ASSIGN_OR_RETURN(spec_.regular_num_clusters, integer(kv));
        mark("regular_num_clusters", kv.value->loc);
      } else if (n == "coverage") {
        BNA_RETURN_IF_ERROR(need_value(kv, "a fraction in [0, 1]"));
        BNA_ASSIGN_OR_RETURN(spec_.coverage_target, number(*kv.value, ":coverage"));
        mark("coverage_target", kv.value->loc);
      } else if (n == "routing") {
        BNA_RETURN_IF_ERROR(need_value(kv, "an .npy path string"));
        if (kv.value->kind != NodeKind::kString)
          return err(kv.value->loc, "expected a quoted .npy path for :routing, got " + kind_name(*kv.value));
        if (kv.value->text.empty()) return err(kv.value->loc, ":routing path is empty");
        spec_.routing.npy_path = kv.value->text;
        mark("routing", kv.value->loc);
      } else if (n == "routing_dim") {
        BNA_ASSIGN_OR_RETURN(spec_.routing.dim, integer(kv));
        mark("routing_dim", kv.value->loc);
      }
    }
    return Status::ok();
  }

  Status local(const Node& sec, const std::vector<const Node*>& p) {
    BNA_ASSIGN_OR_RETURN(auto e, sub_form(sec, p, "window", "(local (window :size 64))"));
    BNA_ASSIGN_OR_RETURN(auto kvs, keywords(e, 1, {"size"}, "window"));
    if (kvs.empty()) return err(e[0]->loc, "(window) needs :size N, :size none or :size (schedule ...)");
    const KeyValue& kv = kvs[0];
    BNA_RETURN_IF_ERROR(need_value(kv, "an integer, none or a schedule"));
    const Node& v = *kv.value;
    mark("window_size", v.loc);
    spec_.window_schedule.reset();
    if (v.kind == NodeKind::kList) {
      BNA_ASSIGN_OR_RETURN(Schedule s, schedule(v, ":size"));
      if (!(s.start >= 0) || s.start != std::floor(s.start) || s.start > 1e15)
        return err(v.loc, "window schedule start " + std::to_string(s.start) +
                              " must be a whole number of tokens >= 0 (it is the compiled window)");
      spec_.window_schedule = s;
      spec_.window_size = static_cast<int64_t>(s.start);
    } else if (is_null(v)) {
      spec_.window_size = 0;
    } else {
      BNA_ASSIGN_OR_RETURN(spec_.window_size, integer(kv, "an integer, none or a schedule"));
    }
    return Status::ok();
  }

  Status highways(const Node& sec, const std::vector<const Node*>& p) {
    BNA_ASSIGN_OR_RETURN(auto e, sub_form(sec, p, "landmarks", "(highways (landmarks :stride 64))"));
    BNA_ASSIGN_OR_RETURN(auto kvs, keywords(e, 1, {"stride"}, "landmarks"));
    if (kvs.empty()) return err(e[0]->loc, "(landmarks) needs :stride N or :stride none");
    const KeyValue& kv = kvs[0];
    BNA_RETURN_IF_ERROR(need_value(kv, "an integer or none"));
    mark("landmark_stride", kv.value->loc);
    if (is_null(*kv.value)) {
      spec_.landmark_stride = 0;
    } else {
      BNA_ASSIGN_OR_RETURN(spec_.landmark_stride, integer(kv, "an integer or none"));
    }
    return Status::ok();
  }

  Status bias(const Node& sec, const std::vector<const Node*>& p) {
    BNA_ASSIGN_OR_RETURN(auto e, sub_form(sec, p, "edge_logit_bias", "(bias (edge_logit_bias :cycle 0.1))"));
    BNA_ASSIGN_OR_RETURN(auto kvs, keywords(e, 1, {"cycle", "window", "landmark", "rewire"}, "edge_logit_bias"));
    for (const auto& kv : kvs) {
      BNA_RETURN_IF_ERROR(need_value(kv, "a number, none or a schedule"));
      const Node& v = *kv.value;
      std::optional<Schedule> s;
      if (v.kind == NodeKind::kList) {
        BNA_ASSIGN_OR_RETURN(s, schedule(v, kv.key->text));
      } else if (!is_null(v)) {
        BNA_ASSIGN_OR_RETURN(double c, number(v, kv.key->text));
        s = Schedule{Schedule::Kind::kConstant, c, c, 1};
      }
      std::optional<Schedule>* slot = kv.name == "cycle"      ? &spec_.edge_bias.cycle
                                      : kv.name == "window"   ? &spec_.edge_bias.window
                                      : kv.name == "landmark" ? &spec_.edge_bias.landmark
                                                              : &spec_.edge_bias.rewire;
      *slot = s;
      spec_.locs["edge_bias." + kv.name] = v.loc;
    }
    return Status::ok();
  }

  Status permute_window(const Node& sec, const std::vector<const Node*>& p) {
    BNA_ASSIGN_OR_RETURN(auto kvs, keywords(p, 1, {"enabled", "window"}, "permute_window"));
    for (const auto& kv : kvs) {
      if (kv.name == "enabled") {
        BNA_ASSIGN_OR_RETURN(spec_.permute_window_enabled, boolean(kv));
        mark("permute_window_enabled", kv.value ? kv.value->loc : kv.key->loc);
      } else {
        BNA_ASSIGN_OR_RETURN(spec_.permute_window_size, integer(kv));
        mark("permute_window_size", kv.value->loc);
      }
    }
    return Status::ok();
  }

  const Document& doc_;
  GraphSpec spec_;
};

nlohmann::json schedule_json(const std::optional<Schedule>& s) {
  if (!s) return nullptr;
  return {{"kind", s->kind == Schedule::Kind::kLinear ? "linear" : "constant"},
          {"start", s->start},
          {"end", s->end},
          {"steps", s->steps}};
}

}  // namespace

double Schedule::value(int64_t step) const {
  if (kind != Kind::kLinear || steps <= 1) return end;
  double a = static_cast<double>(step) / static_cast<double>(steps - 1);
  a = a < 0 ? 0 : a > 1 ? 1 : a;
  return start + a * (end - start);
}

Expected<GraphSpec> build_spec(const Document& doc) { return Builder(doc).run(); }

Expected<GraphSpec> parse_spec(std::string_view text, std::string_view source_name) {
  BNA_ASSIGN_OR_RETURN(Document doc, parse_document(text, source_name));
  return build_spec(doc);
}

Expected<GraphSpec> load_spec(const std::string& path) {
  auto text = io::read_file(path);
  if (!text) return Status(text.status().code(), "spec: cannot read '" + path + "': " + text.status().message());
  BNA_ASSIGN_OR_RETURN(GraphSpec s, parse_spec(*text, path));
  s.base_dir = std::filesystem::path(path).parent_path().string();
  return s;
}

std::string ir_json(const GraphSpec& s, int indent) {
  nlohmann::json routing = nullptr;
  if (topo::strategy_needs_routing(s.strategy)) {
    routing = {{"dim", s.routing.dim}, {"seed", s.routing.seed_set ? s.routing.seed : s.seed}};
    if (!s.routing.npy_path.empty()) routing = {{"npy", s.routing.npy_path}};
  }
  nlohmann::json j = {
      {"degree", s.degree ? nlohmann::json(*s.degree) : nlohmann::json(nullptr)},
      {"strategy", topo::strategy_name(s.strategy)},
      {"seed", s.seed},
      {"num_cycles", s.num_cycles},
      {"edge_disjoint", s.edge_disjoint},
      {"regular_num_clusters", s.regular_num_clusters},
      {"coverage_target", s.coverage_target},
      {"routing", routing},
      {"window_size", s.window_size},
      {"window_schedule", schedule_json(s.window_schedule)},
      {"landmark_stride", s.landmark_stride},
      {"edge_bias",
       {{"cycle", schedule_json(s.edge_bias.cycle)},
        {"window", schedule_json(s.edge_bias.window)},
        {"landmark", schedule_json(s.edge_bias.landmark)},
        {"rewire", schedule_json(s.edge_bias.rewire)}}},
      {"permute_window_enabled", s.permute_window_enabled},
      {"permute_window_size", s.permute_window_size},
  };
  return j.dump(indent);
}

}  // namespace bna::spec
