// test-deps: engine_internals
// kv_pool_blocks: an explicit block count wins; else the budget (kv_memory_bytes, or the backend's default)
// in blocks, capped at max_num_seqs sequences of max_model_len tokens; a budget that holds no block is an
// error naming the EngineConfig field it came from (never a command-line flag).
#include "kv/kv_sizing.h"

#include <gtest/gtest.h>

#include <string>

namespace engine {
namespace {

EngineConfig config(int max_num_seqs, int block_size) {
  EngineConfig c;
  c.max_num_seqs = max_num_seqs;
  c.block_size = block_size;
  return c;
}

std::string error_of(const EngineConfig& c, int max_model_len, KvBackendFacts facts) {
  try {
    kv_pool_blocks(c, max_model_len, facts);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(KvSizing, AnExplicitCountWinsUncapped) {
  EngineConfig c = config(1, 16);
  c.num_kv_blocks = 1000;  // more than 1 sequence of 64 tokens could use: taken as given
  c.kv_memory_bytes = 1;
  EXPECT_EQ(kv_pool_blocks(c, 64, {100, 0}), 1000);
}

TEST(KvSizing, TheBudgetInBlocks) {
  EngineConfig c = config(64, 16);
  c.kv_memory_bytes = 100 * 16 * 10 + 5;  // 10 blocks of 16 tokens at 100 bytes per token, and a rest
  EXPECT_EQ(kv_pool_blocks(c, 2048, {100, 1 << 30}), 10);
  c.kv_memory_bytes = 0;  // the backend's default budget
  EXPECT_EQ(kv_pool_blocks(c, 2048, {100, 100 * 16 * 7}), 7);
}

TEST(KvSizing, CappedAtWhatMaxNumSeqsSequencesOfMaxModelLenCanUse) {
  EngineConfig c = config(3, 16);
  c.kv_memory_bytes = int64_t(1) << 30;
  EXPECT_EQ(kv_pool_blocks(c, 100, {100, 0}), 3 * 7);  // 100 tokens: 7 blocks of 16
}

TEST(KvSizing, ABudgetThatHoldsNoBlockNamesItsField) {
  EngineConfig c = config(8, 16);
  c.kv_memory_bytes = 1024;
  EXPECT_EQ(kv_pool_blocks(c, 2048, {64, 0}), 1);  // exactly one block of 16 x 64 bytes
  EXPECT_EQ(error_of(c, 2048, {65, 0}),
            "KV cache: kv_memory_bytes gives 1024 bytes, which hold no block of 16 tokens (1040 bytes)");
  c.kv_memory_bytes = 0;
  EXPECT_EQ(error_of(c, 2048, {65, 1000}),
            "KV cache: the default KV budget gives 1000 bytes, which hold no block of 16 tokens (1040 bytes)");
  c.backend = BackendKind::kCuda;
  c.gpu_memory_utilization = 0.5;
  const std::string cuda = error_of(c, 2048, {65, 0});
  EXPECT_EQ(cuda.rfind("KV cache: gpu_memory_utilization 0.5", 0), 0u) << cuda;
  EXPECT_NE(cuda.find("(what it leaves after weights and activations) gives 0 bytes"), std::string::npos) << cuda;
  EXPECT_EQ(cuda.find("--"), std::string::npos) << cuda;
}

}  // namespace
}  // namespace engine
