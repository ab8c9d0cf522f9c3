#include "results/server_metrics_jsonl.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "results/files.h"

namespace results {

using nlohmann::json;

namespace {

// JSON has no NaN or infinity; Prometheus values may be either (+Inf buckets): written as strings.
json value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return v;
}

double read_value(const json& v, const std::string& where) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "NaN") return std::nan("");
    if (s == "+Inf") return INFINITY;
    if (s == "-Inf") return -INFINITY;
  }
  throw std::runtime_error(where + ": expected a number, \"NaN\", \"+Inf\" or \"-Inf\", got " + v.dump());
}

std::optional<double> opt_number(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  return read_value(*it, where + " " + key);
}

}  // namespace

void write_server_metrics_jsonl(const std::filesystem::path& path, const std::vector<ServerScrape>& scrapes) {
  if (scrapes.empty()) return;
  std::ostringstream out;
  for (const ServerScrape& s : scrapes) {
    json j = {{"t_s", s.t_s}};
    if (!s.error.empty()) j["error"] = s.error;
    j["running"] = s.running ? json(*s.running) : json(nullptr);
    j["waiting"] = s.waiting ? json(*s.waiting) : json(nullptr);
    j["kv_cache_usage"] = s.kv_cache_usage ? json(*s.kv_cache_usage) : json(nullptr);
    json samples = json::array();
    for (const MetricSample& m : s.samples) {
      json labels = json::object();
      for (const auto& [k, v] : m.labels) labels[k] = v;
      samples.push_back({{"name", m.name}, {"labels", labels}, {"value", value(m.value)}});
    }
    j["samples"] = std::move(samples);
    out << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  write_file_atomically(path, out.str());
}

std::vector<ServerScrape> parse_server_metrics_jsonl(const std::string& text, const std::string& name) {
  std::vector<ServerScrape> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = name + ":" + std::to_string(n);
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) throw std::runtime_error(where + ": not a JSON object");
    ServerScrape s;
    auto t = j.find("t_s");
    if (t == j.end() || !t->is_number()) throw std::runtime_error(where + ": t_s missing or not a number");
    s.t_s = t->get<double>();
    if (auto e = j.find("error"); e != j.end() && e->is_string()) s.error = e->get<std::string>();
    s.running = opt_number(j, "running", where);
    s.waiting = opt_number(j, "waiting", where);
    s.kv_cache_usage = opt_number(j, "kv_cache_usage", where);
    if (auto sm = j.find("samples"); sm != j.end()) {
      if (!sm->is_array()) throw std::runtime_error(where + ": samples must be a list");
      for (size_t i = 0; i < sm->size(); ++i) {
        const json& o = (*sm)[i];
        const std::string w = where + " samples[" + std::to_string(i) + "]";
        if (!o.is_object() || !o.contains("name") || !o["name"].is_string() || !o.contains("value"))
          throw std::runtime_error(w + ": expected {name, labels, value}");
        MetricSample m;
        m.name = o["name"].get<std::string>();
        m.value = read_value(o["value"], w + " value");
        if (auto l = o.find("labels"); l != o.end() && l->is_object())
          for (auto it = l->begin(); it != l->end(); ++it)
            if (it->is_string()) m.labels[it.key()] = it->get<std::string>();
        s.samples.push_back(std::move(m));
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace results
