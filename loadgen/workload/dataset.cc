// Dataset loading: detect gzip, then the layout from the first non-blank character ('[' array, '{' lines),
// then the kind of record (Alpaca or ShareGPT) from the first record that is an object, unless forced.
#include "loadgen/workload/dataset.h"

#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "loadgen/workload/sharegpt.h"

namespace loadgen {
namespace {

using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DatasetError(path + ": cannot open the dataset file");
  unsigned char magic[2] = {0, 0};
  f.read(reinterpret_cast<char*>(magic), 2);
  const bool gz = f.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (!gz) {
    f.clear();
    f.seekg(0);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  f.close();
  gzFile g = gzopen(path.c_str(), "rb");
  if (!g) throw DatasetError(path + ": cannot open the gzip file");
  gzbuffer(g, 1 << 20);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(g, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(g, &err);
      gzclose(g);
      throw DatasetError(path + ": gzip error: " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(g);
  return out;
}

/// Line (1-based) of byte offset `pos` in `text`.
int64_t line_of(const std::string& text, size_t pos) {
  int64_t line = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

/// Reads a string field; "" when absent and optional. Returns an error message or "".
std::string get_string(const json& obj, const char* key, bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return std::string("missing \"") + key + "\"";
    out->clear();
    return "";
  }
  if (!it->is_string()) return std::string("\"") + key + "\" is not a string";
  *out = it->get<std::string>();
  return "";
}

/// Turns one JSON object into samples (one, or one per seed-task instance). Returns an error message or "".
std::string to_samples(const json& obj, int64_t id, std::vector<Sample>* out) {
  if (!obj.is_object()) return "not a JSON object";
  Sample s;
  s.id = id;
  if (auto e = get_string(obj, "instruction", true, &s.instruction); !e.empty()) return e;
  if (s.instruction.empty()) return "\"instruction\" is empty";
  if (auto inst = obj.find("instances"); inst != obj.end()) {
    if (!inst->is_array() || inst->empty()) return "\"instances\" is not a non-empty array";
    std::vector<Sample> tmp;
    for (size_t i = 0; i < inst->size(); ++i) {
      const json& in = (*inst)[i];
      if (!in.is_object()) return "instances[" + std::to_string(i) + "] is not an object";
      Sample t = s;
      if (auto e = get_string(in, "input", false, &t.input); !e.empty()) return "instances[" + std::to_string(i) + "]: " + e;
      if (auto e = get_string(in, "output", true, &t.output); !e.empty()) return "instances[" + std::to_string(i) + "]: " + e;
      tmp.push_back(std::move(t));
    }
    for (auto& t : tmp) out->push_back(std::move(t));
    return "";
  }
  if (auto e = get_string(obj, "input", false, &s.input); !e.empty()) return e;
  if (auto e = get_string(obj, "output", true, &s.output); !e.empty()) return e;
  out->push_back(std::move(s));
  return "";
}

/// The records' kind: forced, or from the first record (an object with "conversations" is ShareGPT).
DatasetFormat record_kind(const DatasetOptions& opt, const json& first) {
  if (opt.format != DatasetFormat::kAuto) return opt.format;
  return looks_like_sharegpt(first) ? DatasetFormat::kShareGpt : DatasetFormat::kAlpaca;
}

void bad(Dataset* ds, const DatasetOptions& opt, std::string where, std::string reason) {
  if (opt.on_bad == OnBadRecord::kFail)
    throw DatasetError(ds->path + ": " + where + ": " + reason + " (--on-bad-record skip to skip bad records)");
  ds->skipped.push_back({std::move(where), std::move(reason)});
}

void parse_array(const std::string& text, Dataset* ds, const DatasetOptions& opt) {
  json arr;
  try {
    arr = json::parse(text);
  } catch (const json::parse_error& e) {
    // A broken array cannot be resynchronised record by record: the whole file is bad.
    throw DatasetError(ds->path + ": line " + std::to_string(line_of(text, e.byte ? e.byte - 1 : 0)) +
                       ": not valid JSON: " + e.what());
  }
  if (!arr.is_array()) throw DatasetError(ds->path + ": expected a JSON array of records");
  const DatasetFormat kind = record_kind(opt, arr.empty() ? json() : arr[0]);
  ds->format = kind == DatasetFormat::kShareGpt ? "sharegpt" : "alpaca-json";
  for (size_t i = 0; i < arr.size(); ++i) {
    size_t before = ds->samples.size();
    std::string err;
    if (kind == DatasetFormat::kShareGpt) {
      Sample s;
      err = sharegpt_sample(arr[i], static_cast<int64_t>(i), &s);
      if (err.empty()) ds->samples.push_back(std::move(s));
    } else {
      err = to_samples(arr[i], static_cast<int64_t>(i), &ds->samples);
    }
    if (!err.empty()) {
      ds->samples.resize(before);
      bad(ds, opt, "record " + std::to_string(i), err);
    } else if (ds->samples.size() - before > 1) {
      ds->format = "seed-tasks";
    }
  }
}

void parse_lines(const std::string& text, Dataset* ds, const DatasetOptions& opt) {
  ds->format = "jsonl";
  std::optional<DatasetFormat> kind;  // from the first line that parses
  int64_t line_no = 0, seed_instances = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = "line " + std::to_string(line_no);
    json obj;
    try {
      obj = json::parse(line);
    } catch (const json::parse_error& e) {
      bad(ds, opt, where, std::string("not valid JSON: ") + e.what());
      continue;
    }
    if (opt.status_ok_only && obj.is_object()) {
      auto st = obj.find("status");
      if (st == obj.end() || !st->is_string() || *st != "ok") {
        ++ds->filtered;
        continue;
      }
    }
    if (!kind) {
      kind = record_kind(opt, obj);
      if (*kind == DatasetFormat::kShareGpt) ds->format = "sharegpt-jsonl";
    }
    if (*kind == DatasetFormat::kShareGpt) {
      Sample s;
      if (std::string err = sharegpt_sample(obj, line_no - 1, &s); !err.empty()) bad(ds, opt, where, err);
      else ds->samples.push_back(std::move(s));
      continue;
    }
    const bool seed = obj.is_object() && obj.contains("instances");
    // Records keep their line's index as id (stable whatever is skipped); seed instances are numbered in order.
    const int64_t id = seed ? seed_instances : line_no - 1;
    size_t before = ds->samples.size();
    std::string err = to_samples(obj, id, &ds->samples);
    if (!err.empty()) {
      ds->samples.resize(before);
      bad(ds, opt, where, err);
      continue;
    }
    if (seed) {
      ds->format = "seed-tasks";
      for (size_t i = before; i < ds->samples.size(); ++i) ds->samples[i].id = seed_instances++;
    }
  }
}

}  // namespace

Dataset parse_dataset(const std::string& text, const std::string& name, const DatasetOptions& options) {
  Dataset ds;
  ds.path = name;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw DatasetError(name + ": the dataset is empty");
  if (text[first] == '[') parse_array(text, &ds, options);
  else if (text[first] == '{') parse_lines(text, &ds, options);
  else throw DatasetError(name + ": line " + std::to_string(line_of(text, first)) +
                          ": expected a JSON array ('[') or JSON lines ('{')");
  if (ds.samples.empty())
    throw DatasetError(name + ": no usable records (" + std::to_string(ds.skipped.size()) + " bad, " +
                       std::to_string(ds.filtered) + " filtered by status)");
  return ds;
}

Dataset load_dataset(const std::string& path, const DatasetOptions& options) {
  return parse_dataset(read_file(path), path, options);
}

}  // namespace loadgen
