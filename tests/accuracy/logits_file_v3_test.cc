// test-deps: accuracy
// Top-K logits files in layout version 3 (rows appended to shared datasets, written in batches) against
// version 2 (a group per request, the layout before): the same requests read back identically from both, over
// several batches, empty prompts and zero-step requests; duplicate ids refused; a killed run's .tmp readable up
// to its last flush; a damaged index named by row and dataset.
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <thread>

#include "accuracy/logits_file.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;
using namespace accuracy;

namespace {

constexpr int kVocab = 32000;

FileInfo topk_info(int k) {
  FileInfo info;
  info.model = "m";
  info.vocab_size = kVocab;
  info.producer = "test";
  info.top_k = k;
  return info;
}

// A top-K request as the dump builds it: pads (kNoToken, -inf), unmapped strings (kUnmapped), NaN for a
// missing chosen logprob.
RequestLogits topk_request(const std::string& id, int n_prompt, int n_steps, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, kVocab - 1);
  std::uniform_real_distribution<float> lp(-20.0f, 0.0f);
  RequestLogits r;
  r.id = id;
  for (int i = 0; i < n_prompt; ++i) r.prompt_tokens.push_back(tok(rng));
  if (seed % 3 != 0) r.prompt_text = "prompt " + id + " — UTF-8 ✓";
  for (int s = 0; s < n_steps; ++s) {
    r.tokens.push_back(s % 7 == 3 ? kUnmapped : tok(rng));
    r.token_logprobs.push_back(s % 5 == 4 ? std::numeric_limits<float>::quiet_NaN() : lp(rng));
    for (int i = 0; i < k; ++i) {
      const bool pad = s % 4 == 1 && i >= k - 2;
      r.top_ids.push_back(pad ? kNoToken : tok(rng));
      r.top_logprobs.push_back(pad ? -std::numeric_limits<float>::infinity() : lp(rng));
    }
  }
  r.unmapped = seed % 4;
  return r;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  return true;
}

void expect_same_request(const RequestLogits& got, const RequestLogits& want) {
  SCOPED_TRACE("request " + want.id);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.prompt_tokens, want.prompt_tokens);
  EXPECT_EQ(got.prompt_text, want.prompt_text);
  EXPECT_EQ(got.prompt_sha256, prompt_sha256(want.prompt_tokens));
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_TRUE(same_bits(got.token_logprobs, want.token_logprobs));
  EXPECT_EQ(got.top_ids, want.top_ids);
  EXPECT_TRUE(same_bits(got.top_logprobs, want.top_logprobs));
  EXPECT_EQ(got.unmapped, want.unmapped);
  EXPECT_TRUE(got.logits.empty());
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const LogitsFileError& e) {
    return e.what();
  }
  return "(no LogitsFileError)";
}

std::vector<RequestLogits> some_requests(int n, int k) {
  std::vector<RequestLogits> out;
  for (int i = 0; i < n; ++i) {
    // Ids not in numeric order, an empty prompt, a request of no steps.
    const int n_steps = i == 2 ? 0 : 1 + (i * 37) % 60;
    out.push_back(topk_request(std::to_string((i * 7919) % 1000), i == 1 ? 0 : 3 + i % 9, n_steps, k, 100 + i));
  }
  return out;
}

}  // namespace

TEST(LogitsFileV3, ReadsBackWhatVersion2Holds) {
  const fs::path dir = testing_paths::fresh_test_dir("logits_v3_");
  const int k = 20;
  const auto requests = some_requests(50, k);
  const std::string v2 = (dir / "v2.h5").string(), v3 = (dir / "v3.h5").string();
  {
    LogitsWriter w2(v2, topk_info(k), {.top_k_version = 2});
    LogitsWriter w3(v3, topk_info(k));  // the default layout
    for (const auto& r : requests) {
      w2.write(r);
      w3.write(r);
    }
    w2.close();
    w3.close();
  }
  EXPECT_FALSE(fs::exists(v3 + ".tmp"));
  LogitsReader r2(v2), r3(v3);
  EXPECT_EQ(r2.info().version, 2);
  EXPECT_EQ(r3.info().version, 3);
  EXPECT_EQ(r3.info().top_k, k);
  EXPECT_EQ(r3.info().vocab_size, kVocab);
  EXPECT_EQ(r3.info().model, "m");
  EXPECT_EQ(r3.info().producer, "test");
  EXPECT_EQ(r3.ids(), r2.ids());
  ASSERT_EQ(r3.ids().size(), requests.size());
  for (const auto& r : requests) {
    ASSERT_TRUE(r3.has(r.id));
    expect_same_request(r3.read(r.id), r);
    expect_same_request(r2.read(r.id), r);
  }
  EXPECT_FALSE(r3.has("1000"));
  EXPECT_EQ(error_of([&] { r3.read("1000"); }), "logits file " + v3 + ": /requests/1000: no such request");
  fs::remove_all(dir);
}

// Batches: appended at every write (flush interval 0), once at close (a long interval), and every 4 MiB
// (3000 requests of 200 steps at K = 20: ~48 MiB of rows), with gzip on the top-K datasets.
TEST(LogitsFileV3, BatchesOfAnySizeReadTheSame) {
  const fs::path dir = testing_paths::fresh_test_dir("logits_v3_batches_");
  const int k = 20;
  struct Case { const char* name; WriterOptions options; int n; int steps; };
  for (const Case& c : {Case{"each", {.flush_interval_s = 0}, 40, 0}, Case{"close", {.flush_interval_s = 3600}, 40, 0},
                        Case{"size", {.flush_interval_s = 3600}, 3000, 200},
                        Case{"gzip", {.compression = 4, .flush_interval_s = 0.001}, 200, 0}}) {
    SCOPED_TRACE(c.name);
    const std::string path = (dir / (std::string(c.name) + ".h5")).string();
    std::vector<RequestLogits> requests = c.steps ? std::vector<RequestLogits>() : some_requests(c.n, k);
    for (int i = 0; c.steps && i < c.n; ++i) requests.push_back(topk_request(std::to_string(i), 4, c.steps, k, i));
    {
      LogitsWriter w(path, topk_info(k), c.options);
      for (const auto& r : requests) w.write(r);
      w.close();
    }
    LogitsReader rd(path);
    ASSERT_EQ(rd.ids().size(), requests.size());
    for (size_t i = 0; i < requests.size(); i += c.steps ? 97 : 1) expect_same_request(rd.read(requests[i].id), requests[i]);
    expect_same_request(rd.read(requests.back().id), requests.back());
  }
  fs::remove_all(dir);
}

TEST(LogitsFileV3, RefusesDuplicatesAndBadShapesNamingTheRequest) {
  const fs::path dir = testing_paths::fresh_test_dir("logits_v3_dup_");
  const std::string path = (dir / "dup.h5").string();
  LogitsWriter w(path, topk_info(5));
  w.write(topk_request("3", 2, 2, 5, 1));
  EXPECT_EQ(error_of([&] { w.write(topk_request("3", 2, 2, 5, 2)); }),
            "logits file " + path + ": request 3: duplicate request id (already written)");
  RequestLogits bad = topk_request("4", 2, 2, 5, 3);
  bad.top_ids.pop_back();
  EXPECT_EQ(error_of([&] { w.write(bad); }),
            "logits file " + path + ": request 4: top-K arrays hold 2 / 9 / 10 values, expected n_steps 2 / n_steps x top_k 10 / 10");
  RequestLogits wrong_sha = topk_request("5", 2, 2, 5, 4);
  wrong_sha.prompt_sha256 = "00";
  EXPECT_NE(error_of([&] { w.write(wrong_sha); }).find("request 5: prompt_sha256 00 does not match"), std::string::npos);
  EXPECT_NE(error_of([&] { LogitsWriter((dir / "x.h5").string(), topk_info(5), {.top_k_version = 4}); })
                .find("top-K layout version 4 is not 2 or 3"),
            std::string::npos);
  w.close();
  EXPECT_EQ(LogitsReader(path).ids(), (std::vector<std::string>{"3"}));
  fs::remove_all(dir);
}

// The killed-run contract: what was written before the last flush (at most a second before the kill) is in
// the .tmp and reads like any file; nothing is under the final name.
TEST(LogitsFileV3, AKilledRunsTemporaryFileHoldsTheRequestsUpToItsLastFlush) {
  const fs::path dir = testing_paths::fresh_test_dir("logits_v3_kill_");
  const std::string path = (dir / "killed.h5").string();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    LogitsWriter w(path, topk_info(8));
    // The default interval (1 s): the third write comes after it, so it appends and flushes all three; the
    // fourth, right after, stays in the batch.
    for (int i = 0; i < 4; ++i) {
      if (i == 2) std::this_thread::sleep_for(std::chrono::milliseconds(1100));
      w.write(topk_request(std::to_string(i), 4, 6, 8, 10 + i));
    }
    char c = 'x';
    if (::write(ready[1], &c, 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_FALSE(fs::exists(path));
  ASSERT_TRUE(fs::exists(path + ".tmp"));
  LogitsReader partial(path + ".tmp");
  EXPECT_EQ(partial.info().version, 3);
  EXPECT_EQ(partial.ids(), (std::vector<std::string>{"0", "1", "2"}));
  expect_same_request(partial.read("2"), topk_request("2", 4, 6, 8, 12));
  fs::remove_all(dir);
}

TEST(LogitsFileV3, ADamagedIndexIsNamedByRowAndDataset) {
  const fs::path dir = testing_paths::fresh_test_dir("logits_v3_damaged_");
  const std::string path = (dir / "damaged.h5").string();
  {
    LogitsWriter w(path, topk_info(4));
    w.write(topk_request("0", 3, 5, 4, 1));
    w.write(topk_request("1", 3, 5, 4, 2));
    w.close();
  }
  // Row 1's step count (column 5) made to run past the end of the step datasets.
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "index", H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  const hsize_t start[2] = {1, 5}, count[2] = {1, 1};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  hid_t mem = H5Screate_simple(2, count, nullptr);
  const int64_t steps = 50;
  H5Dwrite(ds, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, &steps);
  H5Sclose(mem); H5Sclose(space); H5Dclose(ds); H5Fclose(f);
  EXPECT_EQ(error_of([&] { LogitsReader r(path); }),
            "logits file " + path + ": /index row 1: /tokens [5, 55) is outside its 10 rows");

  const std::string no_index = (dir / "no_index.h5").string();
  {
    LogitsWriter w(no_index, topk_info(4));
    w.close();
  }
  f = H5Fopen(no_index.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "top_ids", H5P_DEFAULT);
  H5Fclose(f);
  EXPECT_EQ(error_of([&] { LogitsReader r(no_index); }), "logits file " + no_index + ": /top_ids: missing dataset");
  fs::remove_all(dir);
}
