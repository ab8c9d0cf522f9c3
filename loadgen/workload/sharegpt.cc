#include "loadgen/workload/sharegpt.h"

#include <nlohmann/json.hpp>

namespace loadgen {
namespace {

using nlohmann::json;

enum class Role { kUser, kAssistant, kSystem, kUnknown };

Role role_of(const std::string& from) {
  if (from == "human" || from == "user") return Role::kUser;
  if (from == "gpt" || from == "assistant" || from == "chatgpt" || from == "bing" || from == "bard" ||
      from == "model")
    return Role::kAssistant;
  if (from == "system") return Role::kSystem;
  return Role::kUnknown;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

}  // namespace

bool looks_like_sharegpt(const json& record) { return record.is_object() && record.contains("conversations"); }

std::string sharegpt_sample(const json& record, int64_t id, Sample* out) {
  if (!record.is_object()) return "not a JSON object";
  std::string who;  // the record's own id, to find it in the file
  if (auto it = record.find("id"); it != record.end() && (it->is_string() || it->is_number()))
    who = "(id " + it->dump() + ") ";
  auto conv = record.find("conversations");
  if (conv == record.end()) return who + "missing \"conversations\"";
  if (!conv->is_array()) return who + "\"conversations\" is not a list";
  Sample s;
  s.id = id;
  bool open_user = false;  // a human message waits for its gpt answer
  bool stopped = false;    // the alternation broke: later messages are not turns
  for (size_t i = 0; i < conv->size(); ++i) {
    const json& m = (*conv)[i];
    const std::string at = who + "conversations[" + std::to_string(i) + "]";
    if (!m.is_object()) return at + ": not an object";
    auto from = m.find("from");
    auto value = m.find("value");
    if (from == m.end() || !from->is_string()) return at + ": missing a string \"from\"";
    if (value == m.end() || !value->is_string()) return at + ": missing a string \"value\"";
    const std::string f = from->get<std::string>();
    const Role role = role_of(f);
    if (role == Role::kUnknown)
      return at + ": unknown \"from\" '" + f + "' (human, user, gpt, assistant, system)";
    if (blank(value->get_ref<const std::string&>())) return at + " (" + f + "): \"value\" is empty";
    if (stopped) continue;  // still checked above: a bad message anywhere is a bad record
    const std::string& text = value->get_ref<const std::string&>();
    if (role == Role::kSystem) {
      if (s.turns.empty() && !open_user) s.system = text;
      else stopped = true;
    } else if (role == Role::kUser) {
      if (open_user) stopped = true;  // two human messages in a row
      else s.turns.push_back({text, "", 0}), open_user = true;
    } else if (open_user) {
      s.turns.back().reference = text;
      open_user = false;
    } else if (!s.turns.empty()) {
      stopped = true;  // two gpt messages in a row; leading gpt messages (before any human) are skipped
    }
  }
  if (s.turns.empty()) return who + "no \"human\" turn in \"conversations\"";
  if (s.turns.front().reference.empty()) return who + "no \"gpt\" turn after the first \"human\" turn";
  if (open_user) s.turns.pop_back();  // a last question without its answer: no reference length
  *out = std::move(s);
  return "";
}

}  // namespace loadgen
