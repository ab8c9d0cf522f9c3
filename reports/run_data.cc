#include "reports/run_data.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace reports {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

// Optional fields: absent or null → empty; anything else must have the right type.
std::optional<double> opt_double(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {  // "inf" under --failures-as-inf
    const std::string s = it->get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "nan") return kNaN;
  }
  fail(where, std::string("field \"") + key + "\" is not a number");
}

std::optional<int> opt_int(const json& o, const char* key, const std::string& where) {
  const std::optional<double> v = opt_double(o, key, where);
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

std::string opt_string(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return "";
  if (!it->is_string()) fail(where, std::string("field \"") + key + "\" is not a string");
  return it->get<std::string>();
}

template <typename T>
std::vector<T> number_array(const json& o, const char* key, const std::string& where) {
  std::vector<T> out;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return out;
  if (!it->is_array()) fail(where, std::string("field \"") + key + "\" is not an array");
  for (const json& v : *it) {
    if (!v.is_number()) fail(where, std::string("field \"") + key + "\" holds a non-number");
    out.push_back(v.get<T>());
  }
  return out;
}

loadgen::RequestRow row_from_json(const json& o, const std::string& where) {
  if (!o.is_object()) fail(where, "not a JSON object");
  loadgen::RequestRow r;
  const std::optional<double> index = opt_double(o, "index", where);
  if (!index) fail(where, "missing field \"index\"");
  r.index = static_cast<uint64_t>(*index);
  r.sample_id = static_cast<int64_t>(opt_double(o, "sample_id", where).value_or(0));
  r.status = opt_string(o, "status", where);
  if (r.status.empty()) fail(where, "missing field \"status\"");
  r.error = opt_string(o, "error", where);
  r.scheduled_s = opt_double(o, "scheduled_s", where).value_or(kNaN);
  r.send_s = opt_double(o, "send_s", where);
  r.first_token_s = opt_double(o, "first_token_s", where);
  r.end_s = opt_double(o, "end_s", where);
  r.prompt_tokens = opt_int(o, "prompt_tokens", where);
  r.output_tokens = opt_int(o, "output_tokens", where);
  r.ttft_ms = opt_double(o, "ttft_ms", where);
  r.tpot_ms = opt_double(o, "tpot_ms", where);
  r.e2el_ms = opt_double(o, "e2el_ms", where);
  r.itl_ms = number_array<double>(o, "itl_ms", where);
  r.chunk_times_s = number_array<double>(o, "chunk_times_s", where);
  r.chunk_tokens = number_array<int>(o, "chunk_tokens", where);
  if (!r.chunk_tokens.empty() && r.chunk_tokens.size() != r.chunk_times_s.size())
    fail(where, "chunk_tokens and chunk_times_s differ in length");
  return r;
}

// One CSV record (RFC 4180: quoted fields may hold commas, doubled quotes and newlines).
std::vector<std::string> next_csv_record(const std::string& text, size_t* pos) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  size_t i = *pos;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else fields.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n') {
      ++i;
      break;
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  *pos = i;
  return fields;
}

AutoResult auto_from_json(const json& a, const std::vector<int>& batch_sizes, const std::string& where) {
  AutoResult r;
  if (!a.is_object()) fail(where, "\"auto\" is not an object");
  if (auto slo = a.find("slo"); slo != a.end() && slo->is_object()) {
    r.slo_ttft_ms = opt_double(*slo, "ttft_ms", where + " auto.slo").value_or(0);
    r.slo_tpot_ms = opt_double(*slo, "tpot_ms", where + " auto.slo").value_or(0);
  }
  if (auto p = a.find("probes"); p != a.end() && p->is_array()) {
    for (const json& pj : *p) {
      AutoProbe probe;
      probe.batch_size = opt_int(pj, "batch_size", where + " auto.probes").value_or(0);
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

double summary_number(const json& summary, const std::string& key) {
  auto it = summary.find(key);
  if (it == summary.end() || it->is_null()) return kNaN;
  if (it->is_number()) return it->get<double>();
  if (it->is_boolean()) return it->get<bool>() ? 1 : 0;
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  return kNaN;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path.string() + ": read error");
  return s.str();
}

std::vector<loadgen::RequestRow> parse_requests_jsonl(const std::string& text, const std::string& name) {
  std::vector<loadgen::RequestRow> rows;
  std::istringstream in(text);
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + " line " + std::to_string(line_no);
    json o;
    try {
      o = json::parse(line);
    } catch (const json::parse_error& e) {
      fail(where, std::string("invalid JSON (") + e.what() + ")");
    }
    rows.push_back(row_from_json(o, where));
  }
  return rows;
}

std::vector<loadgen::RequestRow> parse_requests_csv(const std::string& text, const std::string& name) {
  size_t pos = 0;
  const std::vector<std::string> header = next_csv_record(text, &pos);
  std::vector<loadgen::RequestRow> rows;
  for (int rec_no = 2; pos < text.size(); ++rec_no) {
    const std::vector<std::string> cells = next_csv_record(text, &pos);
    if (cells.size() == 1 && cells[0].empty()) continue;
    const std::string where = name + " record " + std::to_string(rec_no);
    if (cells.size() != header.size())
      fail(where, std::to_string(cells.size()) + " fields, header has " + std::to_string(header.size()));
    json o = json::object();
    for (size_t i = 0; i < header.size(); ++i) {
      if (cells[i].empty()) continue;
      if (header[i] == "status" || header[i] == "error") {
        o[header[i]] = cells[i];
        continue;
      }
      char* end = nullptr;
      const double v = std::strtod(cells[i].c_str(), &end);
      if (end == cells[i].c_str() || *end != '\0') fail(where, "field \"" + header[i] + "\" is not a number");
      o[header[i]] = v;
    }
    rows.push_back(row_from_json(o, where));
  }
  return rows;
}

bool is_run_dir(const fs::path& dir) { return fs::is_regular_file(dir / "summary.json"); }
bool is_sweep_dir(const fs::path& dir) { return fs::is_regular_file(dir / "sweep.json"); }

RunData load_run(const fs::path& dir) {
  RunData run;
  run.dir = dir;
  const fs::path summary_path = dir / "summary.json";
  if (!fs::is_regular_file(summary_path)) fail(summary_path.string(), "missing (not a run directory)");
  try {
    run.summary = json::parse(read_text_file(summary_path));
  } catch (const json::parse_error& e) {
    fail(summary_path.string(), std::string("invalid JSON (") + e.what() + ")");
  }
  if (!run.summary.is_object()) fail(summary_path.string(), "not a JSON object");
  const std::string label = run.summary.value("label", std::string());
  run.label = !label.empty() ? label : fs::absolute(dir).lexically_normal().filename().string();
  if (run.label.empty()) run.label = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  if (fs::is_regular_file(dir / "requests.jsonl")) {
    run.requests = parse_requests_jsonl(read_text_file(dir / "requests.jsonl"), (dir / "requests.jsonl").string());
    run.has_chunks = true;
  } else if (fs::is_regular_file(dir / "requests.csv")) {
    run.requests = parse_requests_csv(read_text_file(dir / "requests.csv"), (dir / "requests.csv").string());
  }
  return run;
}

json to_json(const SweepData& sweep) {
  json j;
  j["settings"] = sweep.settings;
  j["batch_sizes"] = sweep.batch_sizes;
  j["qps"] = sweep.qps;
  j["cells"] = json::array();
  for (const SweepCell& c : sweep.cells) {
    j["cells"].push_back({{"batch_size", c.batch_size},
                          {"qps", c.qps},
                          {"status", c.status},
                          {"error", c.error},
                          {"dir", c.dir},
                          {"summary", c.summary}});
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
    j["auto"] = {{"slo", {{"ttft_ms", a.slo_ttft_ms}, {"tpot_ms", a.slo_tpot_ms}}},
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
  auto cells = j.find("cells");
  if (cells == j.end() || !cells->is_array()) fail(name, "missing array \"cells\"");
  for (size_t i = 0; i < cells->size(); ++i) {
    const json& cj = (*cells)[i];
    const std::string where = name + " cells[" + std::to_string(i) + "]";
    if (!cj.is_object()) fail(where, "not an object");
    SweepCell c;
    c.batch_size = opt_int(cj, "batch_size", where).value_or(0);
    const std::optional<double> qps = opt_double(cj, "qps", where);
    if (!qps) fail(where, "missing field \"qps\"");
    c.qps = *qps;
    c.status = opt_string(cj, "status", where);
    if (c.status != "ok" && c.status != "failed") fail(where, "status must be \"ok\" or \"failed\"");
    c.error = opt_string(cj, "error", where);
    c.dir = opt_string(cj, "dir", where);
    c.summary = cj.value("summary", json::object());
    if (c.summary.is_null()) c.summary = json::object();
    s.cells.push_back(std::move(c));
  }
  if (auto a = j.find("auto"); a != j.end() && !a->is_null())
    s.autoq = auto_from_json(*a, s.batch_sizes, name);
  return s;
}

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

}  // namespace reports
