// A conversation as the completions APIs get it: one text. Each message's content in order, the next user
// message after a blank line, an answer right after its question (as the model produced it), so a turn's
// prompt begins with the whole context (prompt and answer) of the turn before it.
#pragma once

#include <string>
#include <vector>

#include "loadgen/clients/client.h"

namespace loadgen {

/// system + "\n\n" + user0 + assistant0 + "\n\n" + user1 + ... (a system or user message after any other
/// message is preceded by "\n\n"; an assistant message follows directly).
std::string conversation_prompt(const std::vector<ChatMessage>& messages);

}  // namespace loadgen
