// test-deps: engine_internals accuracy
// Tokenizers (issue 2): the Llama 2 SentencePiece model reproduces the prompt_tokens stored in the reference
// files (Must show 2), the byte tokenizer round-trips, and StreamDecoder never splits a UTF-8 character.
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

#include "accuracy/logits_file.h"
#include "engine/engine.h"
#include "support/test_paths.h"
#include "tokenizer/byte_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

using engine::StreamDecoder;
using engine::Tokenizer;

namespace {

const char* kLlamaTokenizer = "models/llama2-tokenizer/tokenizer.model";

std::string llama_tokenizer_path() { return testing_paths::shared(kLlamaTokenizer).string(); }

// Streams `ids` through a StreamDecoder; returns the deltas (flush() last).
std::vector<std::string> stream(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  StreamDecoder dec(tok);
  std::vector<std::string> deltas;
  for (int32_t id : ids) deltas.push_back(dec.push(id));
  deltas.push_back(dec.flush());
  return deltas;
}

std::string concat(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}

bool is_valid_utf8(const std::string& s) {
  std::string out;
  engine::append_valid_utf8(s, out, true);
  return out == s && s.find("\xEF\xBF\xBD") == std::string::npos;
}

std::vector<int32_t> byte_ids(std::string_view bytes) {
  return engine::load_tokenizer("")->encode(bytes, false);
}

}  // namespace

// Must show 2: the tokenizer gives exactly the prompt_tokens transformers stored for each prompt_text.
TEST(SentencePieceTokenizer, ReproducesReferencePromptTokens) {
  REQUIRE_SHARED(kLlamaTokenizer);
  REQUIRE_SHARED("references/tiny-llama_visible.h5");
  auto tok = engine::load_tokenizer(llama_tokenizer_path());
  accuracy::LogitsReader ref(testing_paths::shared("references/tiny-llama_visible.h5").string());
  ASSERT_EQ(ref.ids().size(), 8u);
  for (const auto& id : ref.ids()) {
    accuracy::RequestLogits r = ref.read(id);
    ASSERT_FALSE(r.prompt_text.empty()) << id;
    EXPECT_EQ(tok->encode(r.prompt_text, /*add_bos=*/true), r.prompt_tokens) << "request " << id;
    // And back: SentencePiece's decode gives the prompt text again.
    EXPECT_EQ(tok->decode(r.prompt_tokens), r.prompt_text) << "request " << id;
  }
}

TEST(SentencePieceTokenizer, VocabularyAndPieces) {
  REQUIRE_SHARED(kLlamaTokenizer);
  auto tok = engine::load_tokenizer(llama_tokenizer_path());
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->describe(), llama_tokenizer_path());
  EXPECT_EQ(tok->token_bytes(1), "");                // <s>: control
  EXPECT_EQ(tok->token_bytes(2), "");                // </s>
  EXPECT_EQ(tok->token_bytes(13), "\n");             // <0x0A>, byte fallback
  EXPECT_EQ(tok->token_bytes(3 + 0xE2), "\xE2");     // <0xE2>
  EXPECT_EQ(tok->token_bytes(278), " the");          // "▁the"
  EXPECT_EQ(tok->token_bytes(-1), "");
  EXPECT_EQ(tok->token_bytes(32000), "");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 278, 32000, -5, 2}), "the");  // out-of-range ids skipped
  EXPECT_EQ(tok->encode("", true), (std::vector<int32_t>{1}));
}

TEST(SentencePieceTokenizer, StreamingKeepsSpacesAndWholeCharacters) {
  REQUIRE_SHARED(kLlamaTokenizer);
  auto tok = engine::load_tokenizer(llama_tokenizer_path());
  const std::string text = "The cat 😀 sat on the 世界 mat, naïve café — done.\nNext line ✓";
  std::vector<int32_t> ids = tok->encode(text, false);
  // The emoji and the rare CJK character fall back to byte pieces, so characters do span several tokens.
  int byte_pieces = 0;
  for (int32_t id : ids) byte_pieces += (id >= 3 && id < 259);
  ASSERT_GE(byte_pieces, 4);

  std::vector<std::string> deltas = stream(*tok, ids);
  for (const auto& d : deltas) EXPECT_TRUE(d.empty() || is_valid_utf8(d)) << "split character in delta";
  // A continuation keeps the space before its first word; SentencePiece's decode drops it, nothing else differs.
  EXPECT_EQ(concat(deltas), " " + tok->decode(ids));
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_EQ(deltas.back(), "");  // nothing dangling

  // Generated after a prompt: only the generated ids are streamed, and the words stay apart.
  std::vector<int32_t> gen = tok->encode("Paris is big", false);
  EXPECT_EQ(concat(stream(*tok, gen)), " Paris is big");
}

TEST(SentencePieceTokenizer, LoadErrorsNameTheFile) {
  auto message = [](const std::string& path) -> std::string {
    try {
      engine::load_tokenizer(path);
    } catch (const engine::ModelLoadError& e) {
      return e.what();
    }
    return "(no ModelLoadError)";
  };
  const std::string dir = ::testing::TempDir();
  const std::string missing = dir + "/no_such_tokenizer.model";
  EXPECT_EQ(message(missing), "tokenizer " + missing + ": no such file");
  const std::string garbage = dir + "/garbage_tokenizer.model";
  std::ofstream(garbage) << "this is not a protobuf \xff\xff\xff";
  EXPECT_EQ(message(garbage).rfind("tokenizer " + garbage + ": not a SentencePiece model (", 0), 0u)
      << message(garbage);
  EXPECT_EQ(message(dir), "tokenizer " + dir + ": is a directory, expected a SentencePiece tokenizer.model file");
  std::remove(garbage.c_str());
}

TEST(ByteTokenizer, Basics) {
  auto tok = engine::load_tokenizer("");
  EXPECT_EQ(tok->describe(), "bytes");
  EXPECT_EQ(tok->vocab_size(), 259);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("Hi", true), (std::vector<int32_t>{1, 'H' + 3, 'i' + 3}));
  EXPECT_EQ(tok->encode("\xff", false), (std::vector<int32_t>{258}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 'H' + 3, 0, 2, 259, 400, -1, 'i' + 3}), "Hi");  // others: nothing
  EXPECT_EQ(tok->token_bytes(259), "");
  EXPECT_EQ(tok->token_bytes(3), std::string(1, '\0'));
  auto wide = engine::make_byte_tokenizer(512);  // stories260K's vocabulary size
  EXPECT_EQ(wide->vocab_size(), 512);
  EXPECT_EQ(wide->decode(std::vector<int32_t>{300, 'a' + 3}), "a");
  EXPECT_THROW(engine::make_byte_tokenizer(100), std::invalid_argument);
}

TEST(ByteTokenizer, RoundTripsRandomUtf8) {
  auto tok = engine::load_tokenizer("");
  std::mt19937 rng(11);
  const std::vector<std::string> alphabet = {"a", " ", "\n", "é", "ß", "€", "世", "界", "😀", "🦙", "\t", "~"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    for (int i = 0, n = rng() % 40; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    std::vector<int32_t> ids = tok->encode(s, true);
    ASSERT_EQ(ids.size(), s.size() + 1);
    EXPECT_EQ(tok->decode(ids), s);
    std::vector<std::string> deltas = stream(*tok, ids);
    EXPECT_EQ(concat(deltas), s);
    for (const auto& d : deltas) ASSERT_TRUE(d.empty() || is_valid_utf8(d));
  }
}

TEST(ByteTokenizer, ReproducesStories260KReferencePrompts) {
  // stories260K's reference prompts are bos + the alpaca instruction as byte tokens.
  REQUIRE_SHARED("references/stories260K_visible.h5");
  REQUIRE_SHARED("datasets/alpaca_200.json");
  std::ifstream in(testing_paths::shared("datasets/alpaca_200.json"));
  nlohmann::json alpaca = nlohmann::json::parse(in);
  auto tok = engine::load_tokenizer("");
  accuracy::LogitsReader ref(testing_paths::shared("references/stories260K_visible.h5").string());
  for (const auto& id : ref.ids()) {
    const std::string instruction = alpaca.at(std::stoi(id)).at("instruction");
    EXPECT_EQ(tok->encode(instruction, true), ref.read(id).prompt_tokens) << "request " << id;
  }
}

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  auto tok = engine::load_tokenizer("");
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push('a' + 3), "a");
  EXPECT_EQ(dec.push(0xF0 + 3), "");  // 😀 = F0 9F 98 80
  EXPECT_EQ(dec.push(0x9F + 3), "");
  EXPECT_EQ(dec.push(0x98 + 3), "");
  EXPECT_EQ(dec.push(0x80 + 3), "😀");
  EXPECT_EQ(dec.push(1), "");          // control ids add nothing and do not disturb a pending character
  EXPECT_EQ(dec.push(0xE2 + 3), "");   // € = E2 82 AC
  EXPECT_EQ(dec.push(2), "");
  EXPECT_EQ(dec.push(0x82 + 3), "");
  EXPECT_EQ(dec.push(0xAC + 3), "€");
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharacters) {
  // Expected strings from Python's bytes.decode("utf-8", "replace") (one U+FFFD per maximal ill-formed part).
  const std::string R = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xff", R},
      {"\x80", R},
      {"\xc0\xaf", R + R},                       // overlong
      {"\xed\xa0\x80", R + R + R},               // surrogate
      {"\xe2\x82" "b", R + "b"},                 // truncated, then ASCII
      {"\xf0\x9f\x98", R},                       // dangling at the end: flush() emits one U+FFFD
      {"\xf4\x90\x80\x80", R + R + R + R},       // above U+10FFFF
      {"a\xe2\x82\xac" "b\xe2", "a€b" + R},
      {"\xe0\x80\x80", R + R + R},
      {"\xf8\x88\x80\x80\x80", R + R + R + R + R},
  };
  auto tok = engine::load_tokenizer("");
  for (const auto& [bytes, expected] : cases) {
    std::vector<int32_t> ids = byte_ids(bytes);
    EXPECT_EQ(concat(stream(*tok, ids)), expected) << "bytes of length " << bytes.size();
    EXPECT_EQ(tok->decode(ids), expected);
  }
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(0xE2 + 3), "");
  EXPECT_EQ(dec.push(0x82 + 3), "");
  EXPECT_EQ(dec.flush(), R);
  EXPECT_EQ(dec.flush(), "");
}
