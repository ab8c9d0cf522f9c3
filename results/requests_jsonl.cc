#include "results/requests_jsonl.h"

#include <sstream>

#include "results/files.h"
#include "results/json_fields.h"
#include "results/json_text.h"

namespace results {

using namespace json_fields;

json request_to_json(const RequestRow& r) {
  json j;
  j["index"] = r.index;
  j["sample_id"] = r.sample_id;
  j["status"] = to_string(r.status);
  j["error"] = r.error;
  j["scheduled_s"] = r.scheduled_s;
  j["send_s"] = opt(r.send_s);
  j["first_token_s"] = opt(r.first_token_s);
  j["end_s"] = opt(r.end_s);
  j["prompt_tokens"] = opt(r.prompt_tokens);
  j["output_tokens"] = opt(r.output_tokens);
  j["ttft_ms"] = opt(r.ttft_ms);
  j["tpot_ms"] = opt(r.tpot_ms);
  j["e2el_ms"] = opt(r.e2el_ms);
  j["itl_ms"] = r.itl_ms;
  j["chunk_times_s"] = r.chunk_times_s;
  j["chunk_tokens"] = r.chunk_tokens;
  if (r.session_id) j["session_id"] = *r.session_id;  // multi-turn runs only
  if (r.turn) j["turn"] = *r.turn;
  return j;
}

RequestRow request_from_json(const json& o, const std::string& where) {
  if (!o.is_object()) fail(where, "not a JSON object");
  RequestRow r;
  const std::optional<double> index = opt_double(o, "index", where);
  if (!index) fail(where, "missing field \"index\"");
  r.index = static_cast<uint64_t>(*index);
  r.sample_id = opt_int(o, "sample_id", where).value_or(0);
  const std::string status = opt_string(o, "status", where);
  if (status.empty()) fail(where, "missing field \"status\"");
  const std::optional<Status> st = parse_status(status);
  if (!st) fail(where, "status \"" + status + "\" is not " + kStatusNames.choices());
  r.status = *st;
  r.error = opt_string(o, "error", where);
  r.scheduled_s = opt_double(o, "scheduled_s", where).value_or(std::numeric_limits<double>::quiet_NaN());
  r.send_s = opt_double(o, "send_s", where);
  r.first_token_s = opt_double(o, "first_token_s", where);
  r.end_s = opt_double(o, "end_s", where);
  if (auto v = opt_int(o, "prompt_tokens", where)) r.prompt_tokens = static_cast<int>(*v);
  if (auto v = opt_int(o, "output_tokens", where)) r.output_tokens = static_cast<int>(*v);
  r.ttft_ms = opt_double(o, "ttft_ms", where);
  r.tpot_ms = opt_double(o, "tpot_ms", where);
  r.e2el_ms = opt_double(o, "e2el_ms", where);
  r.itl_ms = number_array<double>(o, "itl_ms", where);
  r.chunk_times_s = number_array<double>(o, "chunk_times_s", where);
  r.chunk_tokens = number_array<int>(o, "chunk_tokens", where);
  r.session_id = opt_int(o, "session_id", where);
  if (auto v = opt_int(o, "turn", where)) r.turn = static_cast<int>(*v);
  if (!r.chunk_tokens.empty() && r.chunk_tokens.size() != r.chunk_times_s.size())
    fail(where, "chunk_tokens and chunk_times_s differ in length");
  return r;
}

void append_request_jsonl(std::string& out, const RequestRow& r) {
  // The fields of request_to_json, in its order (nlohmann's objects sort their keys; readers do not care).
  using namespace json_text;
  out += '{';
  append_key(out, "chunk_times_s");
  append_double_array(out, r.chunk_times_s);
  out += ',';
  append_key(out, "chunk_tokens");
  append_int_array(out, r.chunk_tokens);
  out += ',';
  append_key(out, "e2el_ms");
  append_opt(out, r.e2el_ms);
  out += ',';
  append_key(out, "end_s");
  append_opt(out, r.end_s);
  out += ',';
  append_key(out, "error");
  append_string(out, r.error);
  out += ',';
  append_key(out, "first_token_s");
  append_opt(out, r.first_token_s);
  out += ',';
  append_key(out, "index");
  append_uint(out, r.index);
  out += ',';
  append_key(out, "itl_ms");
  append_double_array(out, r.itl_ms);
  out += ',';
  append_key(out, "output_tokens");
  append_opt(out, r.output_tokens);
  out += ',';
  append_key(out, "prompt_tokens");
  append_opt(out, r.prompt_tokens);
  out += ',';
  append_key(out, "sample_id");
  append_int(out, r.sample_id);
  out += ',';
  append_key(out, "scheduled_s");
  append_double(out, r.scheduled_s);
  out += ',';
  append_key(out, "send_s");
  append_opt(out, r.send_s);
  if (r.session_id) {  // multi-turn runs only
    out += ',';
    append_key(out, "session_id");
    append_int(out, *r.session_id);
  }
  out += ',';
  append_key(out, "status");
  append_string(out, to_string(r.status));
  out += ',';
  append_key(out, "tpot_ms");
  append_opt(out, r.tpot_ms);
  out += ',';
  append_key(out, "ttft_ms");
  append_opt(out, r.ttft_ms);
  if (r.turn) {
    out += ',';
    append_key(out, "turn");
    append_int(out, *r.turn);
  }
  out += "}\n";
}

void write_requests_jsonl(std::ostream& out, const std::vector<RequestRow>& rows) {
  std::string text;
  for (const auto& r : rows) {
    text.clear();
    append_request_jsonl(text, r);
    out << text;
  }
}

void write_requests_jsonl(const std::filesystem::path& path, const std::vector<RequestRow>& rows) {
  std::ostringstream o;
  write_requests_jsonl(o, rows);
  write_file_atomically(path, o.str());
}

std::vector<RequestRow> parse_requests_jsonl(const std::string& text, const std::string& name) {
  std::vector<RequestRow> rows;
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
    rows.push_back(request_from_json(o, where));
  }
  return rows;
}

}  // namespace results
