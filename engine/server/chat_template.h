// Chat templates: a list of messages -> the prompt's token ids, as the model was trained to read them.
// Llama 2's [INST] format (Meta's chat_completion / the HF tokenizer_config template: each user turn opens
// with bos and "[INST] ", the system prompt folds into the first user turn inside <<SYS>>, each assistant
// answer ends with eos) and a plain one ("user: ...\nassistant:") for models with no chat format of their own.
// The text is tokenized piece by piece so bos / eos are real token ids, never the strings "<s>" / "</s>".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/enum_names.h"

namespace server {

enum class ChatTemplate { kLlama2, kPlain };
inline constexpr auto kChatTemplateNames =
    common::enum_names<ChatTemplate>({{ChatTemplate::kLlama2, "llama2"}, {ChatTemplate::kPlain, "plain"}});
inline const char* to_string(ChatTemplate t) { return kChatTemplateNames.name(t); }

struct ChatMessage {
  std::string role;     ///< system | user | assistant
  std::string content;
};

/// One piece of a rendered conversation: optional bos, text (tokenized without bos), optional eos.
struct ChatSegment {
  bool bos = false;
  std::string text;
  bool eos = false;
  bool operator==(const ChatSegment&) const = default;
};

/// The conversation as segments. Throws std::invalid_argument naming the message ("messages[2].role") when
/// the order is not one the template can render: Llama 2 wants an optional system message, then user and
/// assistant turns alternating, ending with a user turn.
std::vector<ChatSegment> render_chat(ChatTemplate t, const std::vector<ChatMessage>& messages);

/// The segments' token ids: tokenize(text) for each piece, with bos_id / eos_id where the segment says.
std::vector<int32_t> chat_tokens(const std::vector<ChatSegment>& segments,
                                 const std::function<std::vector<int32_t>(const std::string&)>& tokenize,
                                 int32_t bos_id, int32_t eos_id);

/// The segments as one string with "<s>" / "</s>" written out (for logs and the prompt echoed back).
std::string chat_text(const std::vector<ChatSegment>& segments);

}  // namespace server
