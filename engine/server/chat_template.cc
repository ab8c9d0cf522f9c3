#include "chat_template.h"

#include <stdexcept>

namespace server {

namespace {

// Meta's llama chat_completion strips each message's content.
std::string strip(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string where(size_t i, const char* field) { return "messages[" + std::to_string(i) + "]." + field; }

std::vector<ChatSegment> llama2(const std::vector<ChatMessage>& messages) {
  std::vector<ChatSegment> out;
  size_t i = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = "<<SYS>>\n" + strip(messages[0].content) + "\n<</SYS>>\n\n";
    i = 1;
  }
  bool expect_user = true;
  for (; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system")
      throw std::invalid_argument(where(i, "role") + ": a system message may only come first (llama2 chat template)");
    if (expect_user && m.role != "user")
      throw std::invalid_argument(where(i, "role") + ": expected user, got '" + m.role +
                                  "' (llama2 chat template: user and assistant turns alternate)");
    if (!expect_user && m.role != "assistant")
      throw std::invalid_argument(where(i, "role") + ": expected assistant, got '" + m.role +
                                  "' (llama2 chat template: user and assistant turns alternate)");
    if (m.role == "user") {
      out.push_back({true, "[INST] " + system + strip(m.content) + " [/INST]", false});
      system.clear();
    } else {
      out.back().text += " " + strip(m.content) + " ";
      out.back().eos = true;
    }
    expect_user = !expect_user;
  }
  if (out.empty()) throw std::invalid_argument("messages: no user message (llama2 chat template)");
  if (expect_user)  // the last turn was the assistant's
    throw std::invalid_argument("messages: the last message must be the user's (llama2 chat template)");
  return out;
}

std::vector<ChatSegment> plain(const std::vector<ChatMessage>& messages) {
  std::string text;
  for (const ChatMessage& m : messages) text += m.role + ": " + m.content + "\n";
  if (messages.empty()) throw std::invalid_argument("messages: empty");
  return {{true, text + "assistant:", false}};
}

}  // namespace

std::vector<ChatSegment> render_chat(ChatTemplate t, const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant")
      throw std::invalid_argument(where(i, "role") + ": expected system, user or assistant, got '" + r + "'");
  }
  return t == ChatTemplate::kLlama2 ? llama2(messages) : plain(messages);
}

std::vector<int32_t> chat_tokens(const std::vector<ChatSegment>& segments,
                                 const std::function<std::vector<int32_t>(const std::string&)>& tokenize,
                                 int32_t bos_id, int32_t eos_id) {
  std::vector<int32_t> out;
  for (const ChatSegment& s : segments) {
    if (s.bos) out.push_back(bos_id);
    const std::vector<int32_t> t = tokenize(s.text);
    out.insert(out.end(), t.begin(), t.end());
    if (s.eos) out.push_back(eos_id);
  }
  return out;
}

std::string chat_text(const std::vector<ChatSegment>& segments) {
  std::string out;
  for (const ChatSegment& s : segments) out += (s.bos ? "<s>" : "") + s.text + (s.eos ? "</s>" : "");
  return out;
}

}  // namespace server
