#include "quant/config.h"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include "core/error.h"

namespace engine::quant {

using nlohmann::json;

bool node_matches(const std::string& pattern, const Node& n) {
  if (pattern == n.name || pattern == n.op_type) return true;
  return fnmatch(pattern.c_str(), n.name.c_str(), 0) == 0;
}

LayerSettings QuantConfig::settings_for(const Node& n) const {
  LayerSettings s = defaults;
  for (const std::string& e : exclude)
    if (node_matches(e, n)) s.quantize = false;
  for (const LayerOverride& o : layers) {
    if (!node_matches(o.match, n)) continue;
    if (o.quantize) s.quantize = *o.quantize;
    if (o.per_channel) s.per_channel = *o.per_channel;
    if (o.bits_w) s.bits_w = *o.bits_w;
    if (o.bits_a) s.bits_a = *o.bits_a;
    if (o.mode_w) s.mode_w = *o.mode_w;
    if (o.mode_a) s.mode_a = *o.mode_a;
    if (o.observer) s.observer = *o.observer;
    if (o.weight_observer) s.weight_observer = *o.weight_observer;
  }
  return s;
}

static void check_settings(int bits_w, int bits_a, const std::string& obs, const std::string& wobs,
                           const std::string& where, bool reduce_range) {
  ENGINE_CHECK(bits_w >= 2 && bits_w <= 8, where, ": bits_w=", bits_w, " must be in 2..8");
  ENGINE_CHECK(bits_a >= 2 && bits_a <= 8, where, ": bits_a=", bits_a, " must be in 2..8");
  ENGINE_CHECK(!reduce_range || bits_w >= 3, where, ": bits_w=", bits_w,
               " leaves no room for --reduce-range (needs >= 3)");
  try {
    find_observer(obs);
    find_observer(wobs);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
}

void QuantConfig::validate() const {
  check_settings(defaults.bits_w, defaults.bits_a, defaults.observer, defaults.weight_observer,
                 "quantization settings", reduce_range);
  ENGINE_CHECK(scale_bits >= 1 && scale_bits <= 31, "--scale-bits ", scale_bits,
               " must be in 1..31");
  for (const LayerOverride& o : layers)
    check_settings(o.bits_w.value_or(defaults.bits_w), o.bits_a.value_or(defaults.bits_a),
                   o.observer.value_or(defaults.observer),
                   o.weight_observer.value_or(defaults.weight_observer),
                   "layer override '" + o.match + "'", reduce_range);
}

namespace {

// YAML -> JSON so both formats share one reader. Scalars become numbers or booleans when they
// parse as such.
json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json j = json::object();
      for (const auto& kv : n) j[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      json j = json::array();
      for (const auto& v : n) j.push_back(yaml_to_json(v));
      return j;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      try {
        size_t pos = 0;
        const long long i = std::stoll(s, &pos);
        if (pos == s.size()) return i;
        const double d = std::stod(s, &pos);
        if (pos == s.size()) return d;
      } catch (...) {
      }
      return s;
    }
    default:
      return nullptr;
  }
}

template <typename T>
T get_field(const json& j, const char* key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(where, ": field '", key, "' has the wrong type (", j.at(key).dump(), ")");
  }
}

void read_settings(const json& j, const std::string& where, LayerOverride& o) {
  static const char* known[] = {"match",  "quantize", "per_channel", "bits_w",         "bits_a",
                                "mode_w", "mode_a",   "observer",    "weight_observer"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    ENGINE_CHECK(ok, where, ": unknown field '", it.key(),
                 "' (known: match, quantize, per_channel, bits_w, bits_a, mode_w, mode_a, "
                 "observer, weight_observer)");
  }
  if (j.contains("quantize")) o.quantize = get_field<bool>(j, "quantize", where);
  if (j.contains("per_channel")) o.per_channel = get_field<bool>(j, "per_channel", where);
  if (j.contains("bits_w")) o.bits_w = get_field<int>(j, "bits_w", where);
  if (j.contains("bits_a")) o.bits_a = get_field<int>(j, "bits_a", where);
  try {
    if (j.contains("mode_w")) o.mode_w = parse_qmode(get_field<std::string>(j, "mode_w", where));
    if (j.contains("mode_a")) o.mode_a = parse_qmode(get_field<std::string>(j, "mode_a", where));
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  if (j.contains("observer")) o.observer = get_field<std::string>(j, "observer", where);
  if (j.contains("weight_observer"))
    o.weight_observer = get_field<std::string>(j, "weight_observer", where);
}

// Applies atomically: on error `out` is unchanged.
void apply_json(const json& root, QuantConfig& out, const std::string& what) {
  QuantConfig cfg = out;
  ENGINE_CHECK(root.is_object(), what, ": expected a mapping with 'layers' (and 'defaults')");
  for (auto it = root.begin(); it != root.end(); ++it)
    ENGINE_CHECK(it.key() == "defaults" || it.key() == "layers", what, ": unknown key '", it.key(),
                 "' (expected 'defaults' and 'layers')");
  if (root.contains("defaults")) {
    LayerOverride o;
    read_settings(root["defaults"], what + " defaults", o);
    LayerSettings& d = cfg.defaults;
    if (o.quantize) d.quantize = *o.quantize;
    if (o.per_channel) d.per_channel = *o.per_channel;
    if (o.bits_w) d.bits_w = *o.bits_w;
    if (o.bits_a) d.bits_a = *o.bits_a;
    if (o.mode_w) d.mode_w = *o.mode_w;
    if (o.mode_a) d.mode_a = *o.mode_a;
    if (o.observer) d.observer = *o.observer;
    if (o.weight_observer) d.weight_observer = *o.weight_observer;
  }
  if (root.contains("layers")) {
    ENGINE_CHECK(root["layers"].is_array(), what, ": 'layers' must be a list");
    int i = 0;
    for (const json& e : root["layers"]) {
      const std::string where = str_cat(what, " layers[", i++, "]");
      ENGINE_CHECK(e.is_object() && e.contains("match") && e["match"].is_string(), where,
                   ": each entry needs 'match' (a node name, op type or glob)");
      LayerOverride o;
      o.match = e["match"].get<std::string>();
      read_settings(e, where, o);
      cfg.layers.push_back(o);
    }
  }
  try {
    cfg.validate();
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
  out = std::move(cfg);
}

}  // namespace

void apply_config_json(const std::string& text, QuantConfig& cfg, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(what, ": not valid JSON: ", e.what());
  }
  apply_json(j, cfg, what);
}

void load_config_file(const std::string& path, QuantConfig& cfg) {
  std::ifstream f(path, std::ios::binary);
  ENGINE_CHECK(f, path, ": cannot open the quantization config file");
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const bool yaml = path.size() >= 5 && (path.ends_with(".yaml") || path.ends_with(".yml"));
  if (!yaml) return apply_config_json(text, cfg, path);
  json j;
  try {
    j = yaml_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    fail(path, ": not valid YAML: ", e.what());
  }
  apply_json(j, cfg, path);
}

}  // namespace engine::quant
