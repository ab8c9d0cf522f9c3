// test-deps: engine llm_server_lib
// llm-serve's chat templates on strings: Llama 2's [INST] format (Meta's chat_completion, the HF template)
// and the plain one, bos/eos as token ids, and conversations a template cannot render refused by message.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "chat_template.h"

using namespace server;

namespace {

// One "token" per byte, offset so that no byte collides with the bos (1) and eos (2) ids used here.
std::vector<int32_t> bytes(const std::string& s) {
  std::vector<int32_t> out;
  for (unsigned char c : s) out.push_back(100 + c);
  return out;
}

std::string refusal(ChatTemplate t, const std::vector<ChatMessage>& m) {
  try {
    render_chat(t, m);
    return "";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

}  // namespace

TEST(ChatTemplate, Llama2OneUserMessage) {
  const auto seg = render_chat(ChatTemplate::kLlama2, {{"user", "  Give three tips.\n"}});
  ASSERT_EQ(seg.size(), 1u);
  EXPECT_EQ(seg[0], (ChatSegment{true, "[INST] Give three tips. [/INST]", false}));
  EXPECT_EQ(chat_text(seg), "<s>[INST] Give three tips. [/INST]");
}

TEST(ChatTemplate, Llama2SystemFoldsIntoTheFirstTurnAndAnswersEndWithEos) {
  const auto seg = render_chat(ChatTemplate::kLlama2, {{"system", "Be brief."},
                                                        {"user", "Hi"},
                                                        {"assistant", "Hello!"},
                                                        {"user", "And now?"}});
  ASSERT_EQ(seg.size(), 2u);
  EXPECT_EQ(chat_text(seg),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
            "<s>[INST] And now? [/INST]");
  // bos and eos are ids, not the text "<s>": the tokens are bos, the turn's bytes, eos, bos, ...
  const std::vector<int32_t> t = chat_tokens(seg, bytes, 1, 2);
  std::vector<int32_t> want = {1};
  for (int32_t x : bytes(seg[0].text)) want.push_back(x);
  want.push_back(2);
  want.push_back(1);
  for (int32_t x : bytes(seg[1].text)) want.push_back(x);
  EXPECT_EQ(t, want);
}

TEST(ChatTemplate, PlainRoleLines) {
  const auto seg = render_chat(ChatTemplate::kPlain, {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}});
  ASSERT_EQ(seg.size(), 1u);
  EXPECT_EQ(chat_text(seg), "<s>system: S\nuser: U\nassistant: A\nuser: V\nassistant:");
  EXPECT_EQ(chat_tokens(seg, bytes, 1, 2).front(), 1);
}

TEST(ChatTemplate, ConversationsATemplateCannotRenderNameTheMessage) {
  EXPECT_NE(refusal(ChatTemplate::kLlama2, {{"user", "a"}, {"user", "b"}}).find("messages[1].role: expected assistant"),
            std::string::npos);
  EXPECT_NE(refusal(ChatTemplate::kLlama2, {{"assistant", "a"}}).find("messages[0].role: expected user"), std::string::npos);
  EXPECT_NE(refusal(ChatTemplate::kLlama2, {{"user", "a"}, {"system", "s"}}).find("messages[1].role"), std::string::npos);
  EXPECT_NE(refusal(ChatTemplate::kLlama2, {{"user", "a"}, {"assistant", "b"}}).find("the last message must be the user's"),
            std::string::npos);
  EXPECT_NE(refusal(ChatTemplate::kLlama2, {{"system", "s"}}).find("no user message"), std::string::npos);
  EXPECT_NE(refusal(ChatTemplate::kPlain, {{"user", "a"}, {"tool", "x"}}).find("messages[1].role: expected system, user or assistant"),
            std::string::npos);
  EXPECT_NE(refusal(ChatTemplate::kPlain, {}).find("messages: empty"), std::string::npos);
  // The plain template takes any order of known roles.
  EXPECT_EQ(refusal(ChatTemplate::kPlain, {{"assistant", "a"}, {"user", "b"}, {"user", "c"}}), "");
}

TEST(ChatTemplate, NamesParse) {
  EXPECT_EQ(kChatTemplateNames.parse("llama2", "--chat-template"), ChatTemplate::kLlama2);
  EXPECT_EQ(kChatTemplateNames.parse("plain", "--chat-template"), ChatTemplate::kPlain);
  EXPECT_THROW(kChatTemplateNames.parse("chatml", "--chat-template"), std::invalid_argument);
}
