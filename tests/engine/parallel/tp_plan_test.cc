// test-deps: engine_internals
// make_tp_plan(): the split of each preset's shape, KV-head replication, and an error naming the option and
// the dimension for every N that does not split.
#include <gtest/gtest.h>

#include <string>

#include "model/model.h"
#include "parallel/tp_plan.h"

namespace {

using engine::ModelConfig;
using engine::parallel::make_tp_plan;
using engine::parallel::TpPlan;

ModelConfig cfg(int heads, int kv, int hidden, int vocab) {
  ModelConfig c;
  c.name = "m";
  c.n_heads = heads;
  c.n_kv_heads = kv;
  c.hidden_dim = hidden;
  c.vocab_size = vocab;
  return c;
}

std::string error_of(const ModelConfig& c, int n) {
  try {
    make_tp_plan(c, n, "--tensor-parallel-size");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(TpPlan, Llama270bOnEightRanksHoldsOneKvHeadEach) {
  const TpPlan p = make_tp_plan(engine::load_model_config("dummy:llama-2-70b"), 8, "n");
  EXPECT_EQ(p.n_heads, 8);
  EXPECT_EQ(p.n_kv_heads, 1);
  EXPECT_EQ(p.kv_replicas, 1);
  EXPECT_EQ(p.hidden, 3584);
  EXPECT_EQ(p.vocab, 4000);
  EXPECT_EQ(p.first_kv_head(5), 5);
  EXPECT_EQ(p.first_hidden(7), 7 * 3584);
}

TEST(TpPlan, FewerKvHeadsThanRanksReplicatesThem) {
  const TpPlan p = make_tp_plan(cfg(32, 4, 64, 64), 8, "n");  // GQA 8:1, 4 KV heads over 8 ranks
  EXPECT_EQ(p.n_heads, 4);
  EXPECT_EQ(p.n_kv_heads, 1);
  EXPECT_EQ(p.kv_replicas, 2);
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(p.first_kv_head(r), r / 2);
    // the rank's query heads all read the KV head it holds (head h reads KV head h / 8)
    EXPECT_EQ(p.first_head(r) / 8, p.first_kv_head(r));
    EXPECT_EQ((p.first_head(r) + p.n_heads - 1) / 8, p.first_kv_head(r));
  }
}

TEST(TpPlan, EveryPresetSplitsOverTwoFourAndEight) {
  for (const std::string name : {"llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b"})
    for (int n : {1, 2, 4, 8}) {
      EXPECT_NO_THROW(make_tp_plan(engine::load_model_config("dummy:" + name), n, "n")) << name << " " << n;
    }
}

TEST(TpPlan, BadSplitsNameTheOptionAndTheDimension) {
  EXPECT_EQ(error_of(cfg(32, 32, 64, 64), 0), "--tensor-parallel-size 0: must be >= 1");
  EXPECT_EQ(error_of(cfg(40, 40, 13824, 32000), 3),
            "--tensor-parallel-size 3: m's attention heads (n_heads, num_attention_heads) 40 does not split into 3 "
            "equal parts");
  EXPECT_NE(error_of(cfg(24, 6, 64, 64), 4).find("KV heads (n_kv_heads, num_key_value_heads) 6 does not split into 4"),
            std::string::npos);
  EXPECT_NE(error_of(cfg(24, 3, 64, 64), 8).find("KV heads (n_kv_heads, num_key_value_heads) 3 neither split into "
                                                 "8 equal parts nor replicate evenly over 8 ranks"),
            std::string::npos);
  EXPECT_NE(error_of(cfg(8, 8, 172, 64), 8).find("intermediate size (hidden_dim, intermediate_size) 172"),
            std::string::npos);
  EXPECT_NE(error_of(cfg(8, 8, 64, 32001), 2).find("vocabulary (vocab_size) 32001 does not split into 2"),
            std::string::npos);
}

}  // namespace
