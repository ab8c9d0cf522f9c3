// test-deps: loadgen_lib
// Dataset loading (all three formats, gzip, bad records by line number) and the workload built from it
// (seeded choice, cycling, reorder, output lengths, too-long requests counted).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "loadgen/workload/dataset.h"
#include "loadgen/workload/workload.h"
#include "support/test_paths.h"

namespace loadgen {
namespace {

// Byte-level token ids (id = byte + 3, bos 1), the same scheme as the engine's byte tokenizer.
std::vector<int32_t> byte_tokens(const std::string& text, bool add_bos) {
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(1);
  for (unsigned char c : text) ids.push_back(c + 3);
  return ids;
}

TEST(DatasetTest, AlpacaJsonArray) {
  REQUIRE_SHARED("datasets/alpaca_200.json");
  Dataset ds = load_dataset(testing_paths::shared("datasets/alpaca_200.json"));
  EXPECT_EQ(ds.format, "alpaca-json");
  ASSERT_EQ(ds.samples.size(), 200u);
  EXPECT_EQ(ds.samples[0].id, 0);
  EXPECT_EQ(ds.samples[0].instruction, "Give three tips for staying healthy.");
  EXPECT_EQ(ds.samples[199].id, 199);
  EXPECT_TRUE(ds.skipped.empty());
}

TEST(DatasetTest, GzipCompressedFullAlpaca) {
  REQUIRE_SHARED("datasets/alpaca_data.json.gz");
  Dataset ds = load_dataset(testing_paths::shared("datasets/alpaca_data.json.gz"));
  EXPECT_EQ(ds.samples.size(), 52002u);
  Dataset head = load_dataset(testing_paths::shared("datasets/alpaca_200.json"));
  EXPECT_EQ(ds.samples[150].output, head.samples[150].output);
}

TEST(DatasetTest, BuiltInSampleLoads) {
  Dataset ds = load_dataset(testing_paths::source("datasets/sample_alpaca.json"));
  EXPECT_GE(ds.samples.size(), 40u);
  for (const auto& s : ds.samples) EXPECT_FALSE(s.output.empty()) << "sample " << s.id;
}

TEST(DatasetTest, BadJsonLinesAreReportedByLineNumber) {
  REQUIRE_SHARED("datasets/alpaca_libre_tasks_v2.jsonl");
  const std::string path = testing_paths::shared("datasets/alpaca_libre_tasks_v2.jsonl");
  try {
    load_dataset(path);
    FAIL() << "expected the first bad line to stop the load";
  } catch (const DatasetError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 2279: not valid JSON"), std::string::npos) << msg;
  }
  DatasetOptions skip;
  skip.on_bad = OnBadRecord::kSkip;
  Dataset ds = load_dataset(path, skip);
  ASSERT_EQ(ds.skipped.size(), 14u);
  std::vector<std::string> where;
  for (const auto& b : ds.skipped) where.push_back(b.where);
  EXPECT_EQ(where, (std::vector<std::string>{"line 2279", "line 2281", "line 2282", "line 2283", "line 2284",
                                             "line 2285", "line 2286", "line 2287", "line 2288", "line 2289",
                                             "line 2290", "line 2291", "line 2293", "line 2294"}));
  EXPECT_EQ(ds.samples.size(), 2294u - 14u);
  // A sample keeps its line's index as id, so skipping does not renumber the rest.
  EXPECT_EQ(ds.samples.back().id, 2291);  // line 2292
}

TEST(DatasetTest, StatusOkOnlyFiltersAlpacaLibre) {
  REQUIRE_SHARED("datasets/alpaca_libre_tasks_v1.jsonl");
  DatasetOptions o;
  o.status_ok_only = true;
  Dataset ds = load_dataset(testing_paths::shared("datasets/alpaca_libre_tasks_v1.jsonl"), o);
  EXPECT_EQ(ds.samples.size(), 1202u);
  EXPECT_EQ(ds.filtered, 2375 - 1202);
}

TEST(DatasetTest, SeedTasksExpandInstances) {
  REQUIRE_SHARED("datasets/alpaca_seed_tasks.jsonl");
  const std::string path = testing_paths::shared("datasets/alpaca_seed_tasks.jsonl");
  size_t instances = 0;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) instances += nlohmann::json::parse(line)["instances"].size();
  Dataset ds = load_dataset(path);
  EXPECT_EQ(ds.format, "seed-tasks");
  EXPECT_EQ(ds.samples.size(), instances);
  EXPECT_EQ(ds.samples.back().id, static_cast<int64_t>(instances) - 1);
}

TEST(DatasetTest, MalformedRecordsNameRecordAndReason) {
  const std::string text = R"([{"instruction": "a", "output": "b"},
    {"instruction": "c", "input": 5, "output": "d"},
    {"instruction": "e"}])";
  try {
    parse_dataset(text, "mem.json");
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find("mem.json: record 1: \"input\" is not a string"), std::string::npos)
        << e.what();
  }
  DatasetOptions skip;
  skip.on_bad = OnBadRecord::kSkip;
  Dataset ds = parse_dataset(text, "mem.json", skip);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_EQ(ds.skipped[1].where, "record 2");
  EXPECT_EQ(ds.skipped[1].reason, "missing \"output\"");
  try {
    parse_dataset("[{\"instruction\": \"a\",\n \"output\": }]", "broken.json");
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json: line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_dataset("  \n", "empty.json"), DatasetError);
  EXPECT_FALSE(kOnBadRecordNames.find("ignore").has_value());  // refused, naming the option: resolve_test.cc
}

TEST(DatasetTest, PromptTemplates) {
  EXPECT_EQ(render_prompt(PromptTemplate::kRaw, "Do X.", ""), "Do X.");
  EXPECT_EQ(render_prompt(PromptTemplate::kRaw, "Do X.", "with Y"), "Do X.\n\nwith Y");
  const std::string a = render_prompt(PromptTemplate::kAlpaca, "Do X.", "");
  EXPECT_EQ(a.rfind("Below is an instruction that describes a task. Write", 0), 0u);
  EXPECT_NE(a.find("### Instruction:\nDo X.\n\n### Response:"), std::string::npos);
  const std::string b = render_prompt(PromptTemplate::kAlpaca, "Do X.", "with Y");
  EXPECT_NE(b.find("paired with an input"), std::string::npos);
  EXPECT_NE(b.find("### Input:\nwith Y\n\n### Response:"), std::string::npos);
}

// ---------------------------------------------------------------- workload

Dataset sample_set() { return load_dataset(testing_paths::source("datasets/sample_alpaca.json")); }

TEST(WorkloadTest, SeededChoiceIsReproducibleAndCycles) {
  Dataset ds = sample_set();
  WorkloadOptions o;
  o.num_requests = 3 * ds.samples.size() + 7;  // cycles through the set
  o.sample_seed = 11;
  Workload a = build_workload(ds, o, byte_tokens), b = build_workload(ds, o, byte_tokens);
  ASSERT_EQ(a.items.size(), o.num_requests);
  for (size_t i = 0; i < a.items.size(); ++i) {
    EXPECT_EQ(a.items[i].sample_id, b.items[i].sample_id);
    EXPECT_EQ(a.items[i].prompt, b.items[i].prompt);
    EXPECT_EQ(a.items[i].index, i);
  }
  // Each full cycle holds every record once.
  std::set<int64_t> first_cycle;
  for (size_t i = 0; i < ds.samples.size(); ++i) first_cycle.insert(a.items[i].sample_id);
  EXPECT_EQ(first_cycle.size(), ds.samples.size());
  EXPECT_EQ(a.items[ds.samples.size()].sample_id, a.items[0].sample_id);
  o.sample_seed = 12;
  Workload c = build_workload(ds, o, byte_tokens);
  bool differs = false;
  for (size_t i = 0; i < 20; ++i) differs |= c.items[i].sample_id != a.items[i].sample_id;
  EXPECT_TRUE(differs) << "another seed should choose another order";
}

TEST(WorkloadTest, OutputLengthFromReferenceClampedOrFixed) {
  Dataset ds = sample_set();
  WorkloadOptions o;
  o.num_requests = ds.samples.size();
  o.max_new_tokens = 64;
  Workload w = build_workload(ds, o, byte_tokens);
  for (size_t i = 0; i < w.items.size(); ++i) {
    const Sample* s = nullptr;
    for (const auto& x : ds.samples)
      if (x.id == w.items[i].sample_id) s = &x;
    ASSERT_TRUE(s);
    EXPECT_EQ(w.items[i].max_new_tokens, std::clamp(static_cast<int>(s->output.size()), 1, 64));
    EXPECT_TRUE(w.items[i].ignore_eos);
    EXPECT_EQ(w.prompt_lens[i], static_cast<int>(w.items[i].prompt.size()) + 1);
  }
  o.output_len = 17;
  o.ignore_eos = false;
  for (const auto& it : build_workload(ds, o, byte_tokens).items) {
    EXPECT_EQ(it.max_new_tokens, 17);
    EXPECT_FALSE(it.ignore_eos);
  }
}

TEST(WorkloadTest, ReorderSortsByPromptPlusOutputLength) {
  Dataset ds = sample_set();
  WorkloadOptions o;
  o.num_requests = 120;
  o.sample_seed = 3;
  Workload plain = build_workload(ds, o, byte_tokens);
  for (Reorder r : {Reorder::kLengthAsc, Reorder::kLengthDesc}) {
    o.reorder = r;
    Workload w = build_workload(ds, o, byte_tokens);
    ASSERT_EQ(w.items.size(), plain.items.size());
    std::vector<int> len;
    for (size_t i = 0; i < w.items.size(); ++i) {
      len.push_back(w.prompt_lens[i] + w.items[i].max_new_tokens);
      EXPECT_EQ(w.items[i].index, i);
    }
    if (r == Reorder::kLengthAsc) EXPECT_TRUE(std::is_sorted(len.begin(), len.end()));
    else EXPECT_TRUE(std::is_sorted(len.rbegin(), len.rend()));
    // Same requests, another order.
    std::multiset<int64_t> a, b;
    for (auto& it : w.items) a.insert(it.sample_id);
    for (auto& it : plain.items) b.insert(it.sample_id);
    EXPECT_EQ(a, b);
  }
}

// --too-long skip: the old behaviour, drawn and then set aside (fewer requests than asked).
TEST(WorkloadTest, TooLongRequestsAreSetAsideAndCountedUnderSkip) {
  Dataset ds = sample_set();
  WorkloadOptions o;
  o.num_requests = ds.samples.size();
  o.output_len = 32;
  o.max_model_len = 300;
  o.too_long = TooLongPolicy::kSkip;
  Workload w = build_workload(ds, o, byte_tokens);
  EXPECT_FALSE(w.too_long.empty());
  EXPECT_EQ(w.items.size() + w.too_long.size(), static_cast<size_t>(o.num_requests));
  for (const auto& t : w.too_long) EXPECT_GT(t.prompt_tokens + t.output_tokens, 300);
  for (size_t i = 0; i < w.items.size(); ++i) EXPECT_LE(w.prompt_lens[i] + w.items[i].max_new_tokens, 300);
}

// N is honoured: too-long records are excluded before the seeded draw, which goes on to the records that fit.
TEST(WorkloadTest, TooLongRecordsAreExcludedBeforeTheDrawSoNIsSent) {
  Dataset ds = sample_set();
  WorkloadOptions o;
  o.num_requests = 30;
  o.output_len = 32;
  o.max_model_len = 300;
  o.sample_seed = 4;
  Workload w = build_workload(ds, o, byte_tokens);
  ASSERT_EQ(w.items.size(), 30u);
  EXPECT_EQ(w.too_long_policy, TooLongPolicy::kExclude);
  EXPECT_FALSE(w.too_long.empty());
  for (const auto& t : w.too_long) EXPECT_GT(t.prompt_tokens + t.output_tokens, 300);
  for (size_t i = 0; i < w.items.size(); ++i) EXPECT_LE(w.prompt_lens[i] + w.items[i].max_new_tokens, 300);
  // The requests are the records that fit, in the order of the same seeded draw as without a limit.
  o.max_model_len = 0;
  o.num_requests = static_cast<int64_t>(ds.samples.size());
  Workload all = build_workload(ds, o, byte_tokens);
  std::vector<int64_t> fitting;
  for (size_t i = 0; i < all.items.size(); ++i)
    if (all.prompt_lens[i] + all.items[i].max_new_tokens <= 300) fitting.push_back(all.items[i].sample_id);
  ASSERT_GE(fitting.size(), 30u);
  for (size_t i = 0; i < 30; ++i) EXPECT_EQ(w.items[i].sample_id, fitting[i]) << i;
  // More requests than records that fit: those records, cycled; every too-long record counted once.
  o.max_model_len = 300;
  o.num_requests = 500;
  Workload many = build_workload(ds, o, byte_tokens);
  EXPECT_EQ(many.items.size(), 500u);
  EXPECT_EQ(many.too_long.size() + fitting.size(), ds.samples.size());
}

Dataset two_conversations() {
  Dataset ds;
  Sample a;
  a.id = 0;
  a.system = "Be brief.";
  a.turns = {{"first question", "first answer", 0}, {"second question", "second answer", 0},
             {"third question", "third answer", 0}};
  Sample b;
  b.id = 1;
  b.turns = {{"only question", "only answer", 0}};
  ds.samples = {a, b};
  return ds;
}

TEST(WorkloadTest, ConversationSingleTurnIsTheFirstQuestion) {
  WorkloadOptions o;
  o.num_requests = 2;
  Workload w = build_workload(two_conversations(), o, byte_tokens);
  ASSERT_EQ(w.items.size(), 2u);
  EXPECT_TRUE(w.sessions.empty());
  for (const WorkItem& it : w.items) {
    if (it.sample_id == 0) {
      EXPECT_EQ(it.prompt, "Be brief.\n\nfirst question");  // the system message, then the question; no template
      ASSERT_EQ(it.messages.size(), 2u);
      EXPECT_EQ(it.messages[0], (ChatMessage{"system", "Be brief."}));
      EXPECT_EQ(it.messages[1], (ChatMessage{"user", "first question"}));
      EXPECT_EQ(it.max_new_tokens, 12);  // "first answer" in bytes
    } else {
      EXPECT_EQ(it.prompt, "only question");
    }
    EXPECT_EQ(it.session_id, -1);
  }
}

// -n past the dataset's size sends records again: each request still has an id of its own in the logits files
// (the sample id, then ".r1", ".r2" for the repeats), the same in every run of the same workload and whatever
// --reorder does to the order; a conversation's later turns are "<sample>.t<turn>".
TEST(WorkloadTest, LogitsIdsAreUniqueAndStableWhenRecordsRepeat) {
  Dataset ds = sample_set();
  WorkloadOptions o;
  o.num_requests = 2 * ds.samples.size() + 3;
  o.sample_seed = 5;
  const Workload a = build_workload(ds, o, byte_tokens);
  std::set<std::string> ids;
  for (const WorkItem& it : a.items) {
    EXPECT_TRUE(ids.insert(logits_id_of(it)).second) << "repeated id " << logits_id_of(it);
    EXPECT_EQ(std::stoll(logits_id_of(it)), it.sample_id);  // the id starts with its record's sample id
  }
  EXPECT_EQ(logits_id_of(a.items[0]), std::to_string(a.items[0].sample_id));
  EXPECT_EQ(logits_id_of(a.items[ds.samples.size()]), std::to_string(a.items[0].sample_id) + ".r1");
  EXPECT_EQ(logits_id_of(a.items[2 * ds.samples.size()]), std::to_string(a.items[0].sample_id) + ".r2");
  o.reorder = Reorder::kLengthDesc;
  const Workload sorted = build_workload(ds, o, byte_tokens);
  std::set<std::string> sorted_ids;
  for (const WorkItem& it : sorted.items) sorted_ids.insert(logits_id_of(it));
  EXPECT_EQ(sorted_ids, ids);
  WorkloadOptions turns;
  turns.num_requests = 2;
  turns.multi_turn = true;
  for (const WorkItem& it : build_workload(two_conversations(), turns, byte_tokens).items)
    EXPECT_EQ(logits_id_of(it), it.turn == 0 ? std::to_string(it.sample_id)
                                             : std::to_string(it.sample_id) + ".t" + std::to_string(it.turn));
}

TEST(WorkloadTest, MultiTurnMakesSessionsAndCutsTurnsThatCannotFit) {
  WorkloadOptions o;
  o.num_requests = 2;
  o.multi_turn = true;
  Workload w = build_workload(two_conversations(), o, byte_tokens);
  ASSERT_EQ(w.sessions.size(), 2u);
  EXPECT_EQ(w.items.size(), 4u);
  for (size_t s = 0; s < w.sessions.size(); ++s)
    for (size_t k = 0; k < w.sessions[s].size(); ++k) {
      const WorkItem& it = w.items[w.sessions[s][k]];
      EXPECT_EQ(it.session_id, static_cast<int64_t>(s));
      EXPECT_EQ(it.turn, static_cast<int>(k));
      if (k > 0) {  // only the new message: the history is added when the turn is released
        EXPECT_TRUE(it.prompt.empty());
        ASSERT_EQ(it.messages.size(), 1u);
        EXPECT_EQ(it.messages[0].role, "user");
      }
    }
  // A context that holds two turns of the long conversation but not three: the third is cut and counted.
  o.max_model_len = 1 + 9 + 2 + 14 + 12 + 15 + 13 + 2;  // bos, system, "\n\n", q1, a1, q2, a2, slack
  w = build_workload(two_conversations(), o, byte_tokens);
  EXPECT_EQ(w.items.size(), 3u);
  EXPECT_EQ(w.turns_cut, 1);
}

}  // namespace
}  // namespace loadgen
