#include "results/sweep_json.h"

#include <sstream>

#include "results/files.h"
#include "results/json_fields.h"
#include "results/requests_csv.h"
#include "results/summary_json.h"

namespace results {
namespace fs = std::filesystem;
using namespace json_fields;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

AutoResult auto_from_json(const json& a, const std::vector<int>& batch_sizes, const std::string& where) {
  AutoResult r;
  if (!a.is_object()) fail(where, "\"auto\" is not an object");
  if (auto slo = a.find("slo"); slo != a.end() && slo->is_object()) {
    r.slo.ttft_ms = opt_double(*slo, "ttft_ms", where + " auto.slo").value_or(0);
    r.slo.tpot_ms = opt_double(*slo, "tpot_ms", where + " auto.slo").value_or(0);
  }
  if (auto p = a.find("probes"); p != a.end() && p->is_array()) {
    for (const json& pj : *p) {
      AutoProbe probe;
      probe.batch_size = static_cast<int>(opt_int(pj, "batch_size", where + " auto.probes").value_or(0));
      probe.qps = opt_double(pj, "qps", where + " auto.probes").value_or(kNaN);
      probe.ok = pj.value("ok", false);
      probe.p99_ttft_ms = opt_double(pj, "p99_ttft_ms", where + " auto.probes").value_or(kNaN);
      probe.p99_tpot_ms = opt_double(pj, "p99_tpot_ms", where + " auto.probes").value_or(kNaN);
      r.probes.push_back(probe);
    }
  }
  if (auto m = a.find("max_qps_by_batch_size"); m != a.end() && m->is_array()) {
    for (int bs : batch_sizes) {
      double v = 0;
      for (const json& e : *m)
        if (opt_int(e, "batch_size", where).value_or(0) == bs) v = opt_double(e, "max_qps", where).value_or(0);
      r.max_qps.push_back(v);
    }
  } else {
    r.max_qps.push_back(opt_double(a, "max_qps", where + " auto").value_or(0));
  }
  return r;
}

}  // namespace

json sweep_to_json(const SweepData& sweep) {
  json j;
  j["settings"] = sweep.settings;
  j["batch_sizes"] = sweep.batch_sizes;
  j["qps"] = sweep.qps;
  if (!sweep.concurrency.empty()) j["concurrency"] = sweep.concurrency;
  j["cells"] = json::array();
  for (const SweepCell& c : sweep.cells) {
    j["cells"].push_back({{"batch_size", c.batch_size},
                          {"qps", number(c.qps)},  // "inf" for a closed-loop cell
                          {"status", to_string(c.status)},
                          {"error", c.error},
                          {"dir", c.dir},
                          {"summary", c.summary ? summary_to_json(*c.summary) : json::object()}});
    if (c.concurrency > 0) j["cells"].back()["concurrency"] = c.concurrency;
  }
  if (sweep.autoq) {
    const AutoResult& a = *sweep.autoq;
    json probes = json::array();
    for (const AutoProbe& p : a.probes) {
      // JSON has no NaN: a probe whose run failed has no p99 (null).
      auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
      probes.push_back({{"batch_size", p.batch_size},
                        {"qps", p.qps},
                        {"ok", p.ok},
                        {"p99_ttft_ms", num(p.p99_ttft_ms)},
                        {"p99_tpot_ms", num(p.p99_tpot_ms)}});
    }
    json by_bs = json::array();
    for (size_t i = 0; i < a.max_qps.size() && i < sweep.batch_sizes.size(); ++i)
      by_bs.push_back({{"batch_size", sweep.batch_sizes[i]}, {"max_qps", a.max_qps[i]}});
    j["auto"] = {{"slo", {{"ttft_ms", a.slo.ttft_ms}, {"tpot_ms", a.slo.tpot_ms}}},
                 {"max_qps", a.max_qps.empty() ? 0.0 : a.max_qps.front()},
                 {"max_qps_by_batch_size", by_bs},
                 {"probes", probes}};
  }
  return j;
}

SweepData sweep_from_json(const json& j, const fs::path& dir, const std::string& name) {
  if (!j.is_object()) fail(name, "not a JSON object");
  SweepData s;
  s.dir = dir;
  s.settings = j.value("settings", json::object());
  s.batch_sizes = number_array<int>(j, "batch_sizes", name);
  s.qps = number_array<double>(j, "qps", name);
  if (j.contains("concurrency")) s.concurrency = number_array<int>(j, "concurrency", name);
  auto cells = j.find("cells");
  if (cells == j.end() || !cells->is_array()) fail(name, "missing array \"cells\"");
  for (size_t i = 0; i < cells->size(); ++i) {
    const json& cj = (*cells)[i];
    const std::string where = name + " cells[" + std::to_string(i) + "]";
    if (!cj.is_object()) fail(where, "not an object");
    SweepCell c;
    c.batch_size = static_cast<int>(opt_int(cj, "batch_size", where).value_or(0));
    const std::optional<double> qps = opt_double(cj, "qps", where);
    if (!qps) fail(where, "missing field \"qps\"");
    c.qps = *qps;
    const std::optional<Status> st = parse_status(opt_string(cj, "status", where));
    if (st != Status::kOk && st != Status::kFailed) fail(where, "status must be \"ok\" or \"failed\"");
    c.status = *st;
    c.error = opt_string(cj, "error", where);
    c.dir = opt_string(cj, "dir", where);
    c.concurrency = static_cast<int>(opt_int(cj, "concurrency", where).value_or(0));
    const json summary = opt_object(cj, "summary", where);
    if (!summary.empty()) c.summary = summary_from_json(summary, where + " summary");
    s.cells.push_back(std::move(c));
  }
  if (auto a = j.find("auto"); a != j.end() && !a->is_null()) s.autoq = auto_from_json(*a, s.batch_sizes, name);
  return s;
}

std::string sweep_csv(const SweepData& s) {
  std::ostringstream o;
  o << "batch_size,qps,status,duration,completed,failed,request_throughput,output_throughput,p99_ttft_ms,"
       "p99_tpot_ms,mean_e2el_ms\n";
  for (const SweepCell& c : s.cells) {
    if (c.concurrency > 0) continue;  // closed-loop cells: sweep.json only
    o << c.batch_size << "," << json(c.qps).dump() << "," << csv_field(to_string(c.status));
    // Each number exactly as summary.json writes it (nlohmann prints the shortest round-trip form).
    const json summary = c.summary ? summary_to_json(*c.summary) : json::object();
    for (const char* key : {"duration", "completed", "failed", "request_throughput", "output_throughput",
                            "p99_ttft_ms", "p99_tpot_ms", "mean_e2el_ms"}) {
      auto it = summary.find(key);
      o << ",";
      if (it == summary.end() || it->is_null()) continue;
      if (it->is_number()) o << it->dump();
      else if (it->is_string()) o << it->get<std::string>();  // "inf"
    }
    o << "\n";
  }
  return o.str();
}

void write_sweep_files(const SweepData& s, const fs::path& dir) {
  write_file_atomically(dir / "sweep.csv", sweep_csv(s));
  write_file_atomically(dir / "sweep.json", sweep_to_json(s).dump(2) + "\n");
}

bool is_sweep_dir(const fs::path& dir) { return fs::is_regular_file(dir / "sweep.json"); }

SweepData load_sweep(const fs::path& dir) {
  const fs::path path = dir / "sweep.json";
  if (!fs::is_regular_file(path)) fail(path.string(), "missing (not a sweep directory)");
  json j;
  try {
    j = json::parse(read_text_file(path));
  } catch (const json::parse_error& e) {
    fail(path.string(), std::string("invalid JSON (") + e.what() + ")");
  }
  return sweep_from_json(j, dir, path.string());
}

}  // namespace results
