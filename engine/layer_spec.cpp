#include "engine/layer_spec.hpp"

#include <algorithm>
#include <cmath>

namespace crema {

bool rule_matches(const NetStateRule& rule, const NetState& state) {
  if (rule.phase && *rule.phase != state.phase) return false;
  if (rule.min_level && state.level < *rule.min_level) return false;
  if (rule.max_level && state.level > *rule.max_level) return false;
  auto has = [&](const std::string& s) { return std::find(state.stage.begin(), state.stage.end(), s) != state.stage.end(); };
  for (const auto& s : rule.stage)
    if (!has(s)) return false;
  for (const auto& s : rule.not_stage)
    if (has(s)) return false;
  return true;
}

NetStateRule parse_rule(MapReader& r) {
  NetStateRule rule;
  if (r.has("phase")) rule.phase = static_cast<Phase>(enum_value(*r.find("phase"), {"TRAIN", "TEST"}, 0));
  if (r.has("min_level")) rule.min_level = r.get_int("min_level", 0);
  if (r.has("max_level")) rule.max_level = r.get_int("max_level", 0);
  rule.stage = r.get_strings("stage");
  rule.not_stage = r.get_strings("not_stage");
  r.finish();
  return rule;
}

NetState merged(NetState base, const NetStateSetting& setting) {
  if (setting.phase) base.phase = *setting.phase;
  if (setting.level) base.level = *setting.level;
  base.stage.insert(base.stage.end(), setting.stage.begin(), setting.stage.end());
  return base;
}

NetStateSetting parse_state_setting(MapReader& r) {
  NetStateSetting s;
  if (r.has("phase")) s.phase = static_cast<Phase>(enum_value(*r.find("phase"), {"TRAIN", "TEST"}, 0));
  if (r.has("level")) s.level = r.get_int("level", 0);
  s.stage = r.get_strings("stage");
  r.finish();
  return s;
}

const std::vector<std::string>& common_layer_keys() {
  static const std::vector<std::string> keys = {"name",   "type",       "bottom",         "top",     "param",
                                                "loss_weight", "propagate_down", "include", "exclude", "phase"};
  return keys;
}

LayerSpec parse_layer_spec(const Node& node) {
  LayerSpec s;
  MapReader r(&node);
  s.config = &node;
  s.mark = node.mark();
  s.path = node.path();
  r.allow(common_layer_keys());  // so a missing type is not blamed on a `top` beside it
  s.type = r.required("type").str();
  if (const Node* n = r.find("name")) s.name = n->str();
  s.bottom = r.get_strings("bottom");
  s.top = r.get_strings("top");
  for (auto& p : r.subs("param")) {
    ParamSpec ps;
    ps.name = p.get_string("name", "");
    ps.lr_mult_given = p.has("lr_mult");
    ps.decay_mult_given = p.has("decay_mult");
    ps.lr_mult = p.get_float("lr_mult", 1.f);
    ps.decay_mult = p.get_float("decay_mult", 1.f);
    // A negative decay pushes weights away from zero without bound: never what was meant.
    if (!(ps.decay_mult >= 0.f && std::isfinite(ps.decay_mult)))
      p.fail("decay_mult", "decay_mult must be a finite number >= 0 (0 switches weight decay off for this blob)");
    ps.permissive = p.get_enum("share_mode", {"STRICT", "PERMISSIVE"}, 0, 0) == 1;
    p.finish();
    s.param.push_back(ps);
  }
  s.loss_weight = r.get_floats("loss_weight");
  if (const Node* pd = r.find("propagate_down")) {
    if (pd->is_seq())
      for (const auto& item : pd->items()) s.propagate_down.push_back(item.as_bool());
    else
      s.propagate_down.push_back(pd->as_bool());
  }
  // Names become HDF5 paths, messages and shell commands: a control character (a NUL cuts the
  // name short in all of them) would fail only at the first snapshot, after the training.
  const auto check_name = [&s](const std::string& key, const std::string& name) {
    for (const char c : name)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        s.fail(key + " '" + printable(name) + "' holds a control character; use printable characters");
    // Blanks only: no name to see in a log or a file's group list (an empty one is refused too).
    if (!name.empty() && name.find_first_not_of(' ') == std::string::npos)
      s.fail(key + " '" + name + "' is only spaces; give it a visible name");
  };
  check_name("name", s.name);
  for (const auto& b : s.bottom) check_name("bottom", b);
  for (const auto& t : s.top) check_name("top", t);
  // An empty blob name ("" or a bare `top:` item) fails only where a reader looks it up.
  for (const auto& [key, names] : {std::pair{"bottom", &s.bottom}, std::pair{"top", &s.top}})
    if (std::find(names->begin(), names->end(), "") != names->end())
      s.fail(std::string("a ") + key + " has an empty name; give every blob a name");
  for (const auto& ps : s.param) check_name("param name", ps.name);
  for (auto& inc : r.subs("include")) s.include.push_back(parse_rule(inc));
  for (auto& exc : r.subs("exclude")) s.exclude.push_back(parse_rule(exc));
  if (!s.include.empty() && !s.exclude.empty())
    s.fail("a layer may have include rules or exclude rules, not both");
  if (r.has("phase")) {
    s.phase = static_cast<Phase>(enum_value(*r.find("phase"), {"TRAIN", "TEST"}, 0));
    s.phase_given = true;
  }
  return s;
}

MapReader LayerSpec::params(const std::string& key) const {
  read_keys->push_back(key);
  const Node* n = config ? config->find(key) : nullptr;
  MapReader r(n, mark, path.empty() ? key : path + "." + key);
  r.within(config, key, &common_layer_keys());
  return r;
}

std::string LayerSpec::bottom_label(size_t i) const {
  if (i >= bottom.size()) return "bottom " + std::to_string(i);
  std::string name = bottom[i];
  // Once the net has inserted its splits, the bottom is a split's copy (label_data_1_split_0):
  // the name the user wrote is in the config.
  if (const Node* written = config ? config->find("bottom") : nullptr) {
    const Node* item = written->is_seq() ? (i < written->items().size() ? &written->items()[i] : nullptr)
                                         : (i == 0 ? written : nullptr);
    if (item && item->is_scalar()) name = item->str();
  }
  return "bottom " + std::to_string(i) + " (" + name + ")";
}

void LayerSpec::fail(const std::string& message) const {
  std::string where = path;
  if (!name.empty()) where += (where.empty() ? "" : " ") + std::string("(") + printable(name) + ")";
  throw ConfigError(mark, where, message);
}

void LayerSpec::fail_at(const std::string& params_key, const std::string& key, const std::string& message) const {
  const Node* params = config ? config->find(params_key) : nullptr;
  const Node* value = params && params->is_map() ? params->find(key) : nullptr;
  std::string where = path;
  if (!name.empty()) where += (where.empty() ? "" : " ") + std::string("(") + printable(name) + ")";
  throw ConfigError(value && !value->is_null() ? value->mark() : mark, where, params_key + "." + key + ": " + message);
}

}  // namespace crema
