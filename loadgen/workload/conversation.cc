#include "loadgen/workload/conversation.h"

namespace loadgen {

std::string conversation_prompt(const std::vector<ChatMessage>& messages) {
  size_t size = 0;
  for (const ChatMessage& m : messages) size += m.content.size() + 2;
  std::string out;
  out.reserve(size);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0 && messages[i].role != "assistant") out += "\n\n";
    out += messages[i].content;
  }
  return out;
}

}  // namespace loadgen
