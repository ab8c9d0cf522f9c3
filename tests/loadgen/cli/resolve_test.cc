// test-deps: loadgen_cli
// The resolver: every option's text parsed once into RunConfig. Each bad value is refused with a message that
// names its option; seeds left at -1 derive from --seed; the rate / trace / -n / --reference combinations
// give the N and rate the run uses; sizes have one meaning (KiB = 2^10, KB = 10^3).
#include "loadgen/cli/resolve.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/test_paths.h"

namespace loadgen {
namespace {

/// The message resolve() throws for `s`, or "" when it accepts it.
std::string error_of(const RunSettings& s) {
  try {
    resolve(s);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

RunSettings base() {
  RunSettings s;
  s.model = "dummy:tiny";
  return s;
}

TEST(Resolve, DefaultsAreTheBuiltInRun) {
  const RunConfig c = resolve(base());
  EXPECT_EQ(c.load.rate, 5.0);
  EXPECT_EQ(requests_to_draw(c), 300);  // 5 req/s x 60 s
  EXPECT_EQ(c.load.arrival, ArrivalKind::kPoisson);
  EXPECT_EQ(c.workload.prompt_template, PromptTemplate::kAlpaca);
  EXPECT_EQ(c.workload.reorder, Reorder::kNone);
  EXPECT_TRUE(c.workload.ignore_eos);
  EXPECT_TRUE(std::filesystem::exists(c.workload.dataset)) << c.workload.dataset;  // the built-in sample
  EXPECT_EQ(c.sut.engine.backend, engine::BackendKind::kCpu);
  EXPECT_EQ(c.sut.engine.dtype, engine::ComputeDType::kAuto);
  EXPECT_EQ(c.sut.engine.max_num_seqs, 64);
  EXPECT_EQ(c.sut.engine.kv_memory_bytes, 0);
  EXPECT_FALSE(c.sut.engine.enable_prefix_caching);
  EXPECT_TRUE(c.sut.in_process());
  EXPECT_EQ(c.sut.http.api, HttpApi::kOpenAI);
  EXPECT_FALSE(c.output.slo.has_value());
  EXPECT_EQ(c.logits.dtype, accuracy::LogitsDType::kFloat32);
}

TEST(Resolve, EveryBadValueNamesItsOption) {
  struct Case {
    void (*set)(RunSettings&);
    const char* message;  // the whole message, or its start when it ends in a value we do not spell out
  };
  const Case cases[] = {
      {[](RunSettings& s) { s.on_bad_record = "ignore"; }, "--on-bad-record: expected fail or skip, got 'ignore'"},
      {[](RunSettings& s) { s.prompt_template = "chatml"; }, "--prompt-template: expected alpaca or raw, got 'chatml'"},
      {[](RunSettings& s) { s.reorder = "random"; }, "--reorder: expected none, length-asc or length-desc, got 'random'"},
      {[](RunSettings& s) { s.arrival = "uniform"; }, "--arrival: expected poisson, constant or gamma, got 'uniform'"},
      {[](RunSettings& s) { s.api = "grpc"; }, "--api: expected openai, tgi or llm-serving, got 'grpc'"},
      {[](RunSettings& s) { s.backend = "tpu"; }, "--backend: expected cpu or cuda, got 'tpu'"},
      {[](RunSettings& s) { s.dtype = "fp8"; }, "--dtype: expected auto, f32 or bf16, got 'fp8'"},
      {[](RunSettings& s) { s.logits_dtype = "bfloat16"; }, "--logits-dtype: expected float32 or float16, got 'bfloat16'"},
      {[](RunSettings& s) { s.rate = "fast"; }, "-X/--rate: expected a number > 0 or inf, got 'fast'"},
      {[](RunSettings& s) { s.rate = "0"; }, "-X/--rate: expected a number > 0 or inf, got '0'"},
      {[](RunSettings& s) { s.rate = "5/s"; }, "-X/--rate: expected a number > 0 or inf, got '5/s'"},
      {[](RunSettings& s) { s.slo = "ttfb=2ms"; }, "--slo: unknown key 'ttfb' (ttft, tpot)"},
      {[](RunSettings& s) { s.slo = "ttft=fast"; }, "--slo: 'ttft=fast' is not a number with ms or s"},
      {[](RunSettings& s) { s.kv_memory = "12parsecs"; }, "--kv-memory: unknown unit 'parsecs' in '12parsecs'"},
      {[](RunSettings& s) { s.kv_memory = "lots"; }, "--kv-memory: expected a size like 512MiB or 2GB, got 'lots'"},
      {[](RunSettings& s) { s.kv_memory = "0MiB"; }, "--kv-memory: must be > 0, got '0MiB'"},
      {[](RunSettings& s) { s.max_new_tokens = 0; }, "--max-new-tokens must be > 0"},
      {[](RunSettings& s) { s.output_len = -1; }, "--output-len must be >= 0"},
      {[](RunSettings& s) { s.temperature = -0.5f; }, "--temperature must be >= 0"},
      {[](RunSettings& s) { s.duration_s = 0; }, "-T/--duration must be > 0"},
      {[](RunSettings& s) { s.num_requests = -3; }, "-n must be >= 0"},
      {[](RunSettings& s) { s.burstiness = 0; }, "--burstiness must be > 0"},
      {[](RunSettings& s) { s.max_concurrency = -1; }, "--max-concurrency must be >= 0"},
      {[](RunSettings& s) { s.drain_timeout_s = 0; }, "--drain-timeout must be > 0"},
      {[](RunSettings& s) { s.warmup = -1; }, "--warmup must be >= 0"},
      {[](RunSettings& s) { s.batch_size = 0; }, "--batch-size must be > 0"},
      {[](RunSettings& s) { s.max_batched_tokens = 0; }, "--max-batched-tokens must be > 0"},
      {[](RunSettings& s) { s.kv_blocks = -1; }, "--kv-blocks must be >= 0"},
      {[](RunSettings& s) { s.gpu_memory_utilization = 1.5; }, "--gpu-memory-utilization: expected a fraction in (0, 1]"},
      {[](RunSettings& s) { s.block_size = 0; }, "--block-size must be > 0"},
      {[](RunSettings& s) { s.threads = -2; }, "--threads must be >= 0"},
      {[](RunSettings& s) { s.max_model_len = -1; }, "--max-model-len must be >= 0"},
      {[](RunSettings& s) { s.request_timeout_s = -1; }, "--request-timeout must be >= 0"},
      {[](RunSettings& s) { s.logits_steps = 0; }, "--logits-steps must be > 0"},
      {[](RunSettings& s) { s.dataset = "/no/such/file.json"; }, "--dataset: no such file: /no/such/file.json"},
      {[](RunSettings& s) { s.reference = "/no/such/base.h5"; }, "--reference: no such file: /no/such/base.h5"},
      {[](RunSettings& s) { s.endpoint = "localhost:8000"; }, "--endpoint: 'localhost:8000' must start with http://"},
      {[](RunSettings& s) { s.endpoint = "http://h:1/v1"; }, "--endpoint: 'http://h:1/v1' must be http://host:port"},
      {[](RunSettings& s) { s.endpoint = "http://h:1", s.api = "llm-serving", s.model_name = ""; },
       "--model-name: empty"},
      {[](RunSettings& s) { s.endpoint = "http://h:1", s.enable_prefix_caching = true; },
       "--enable-prefix-caching: sets the in-process engine; a server (--endpoint) is started with its own"},
      {[](RunSettings& s) { s.endpoint = "http://h:1", s.dump_logits = "x.h5"; },
       "--dump-logits and --reference need the in-process engine (not --endpoint)"},
      {[](RunSettings& s) { s.backend = "cpu", s.dtype = "bf16"; },
       "--dtype bf16: the cpu backend computes in f32 only (use --dtype auto or f32, or --backend cuda)"},
      {[](RunSettings& s) { s.kv_cache_dtype = "int4"; }, "--kv-cache-dtype: expected auto or fp8, got 'int4'"},
      {[](RunSettings& s) { s.kv_cache_dtype = "fp8"; },
       "--kv-cache-dtype fp8: needs --backend cuda in the bf16 mode (--dtype auto or bf16)"},
      {[](RunSettings& s) { s.backend = "cuda", s.dtype = "f32", s.kv_cache_dtype = "fp8"; },
       "--kv-cache-dtype fp8: needs --backend cuda in the bf16 mode"},
  };
  for (const Case& c : cases) {
    RunSettings s = base();
    c.set(s);
    const std::string got = error_of(s);
    EXPECT_EQ(got.substr(0, std::string(c.message).size()), c.message) << "got: " << got;
  }
}

TEST(Resolve, SeedsDeriveFromTheBaseSeedUnlessGiven) {
  RunSettings s = base();
  s.seed = 40;
  RunConfig c = resolve(s);
  EXPECT_EQ(c.load.arrival_seed, 40u);
  EXPECT_EQ(c.workload.sample_seed, 41u);
  EXPECT_EQ(c.workload.sampling_seed, 42u);
  s.sample_seed = 7;  // one stream pinned: the others still follow --seed
  c = resolve(s);
  EXPECT_EQ(c.load.arrival_seed, 40u);
  EXPECT_EQ(c.workload.sample_seed, 7u);
  EXPECT_EQ(c.workload.sampling_seed, 42u);
  s.arrival_seed = 0;  // 0 is a seed, not "derived"
  s.sampling_seed = 3;
  c = resolve(s);
  EXPECT_EQ(c.load.arrival_seed, 0u);
  EXPECT_EQ(c.workload.sampling_seed, 3u);
  const nlohmann::json j = to_json(c);  // the summary records the seeds the run used
  EXPECT_EQ(j["seed"], 40);
  EXPECT_EQ(j["arrival_seed"], 0);
  EXPECT_EQ(j["sample_seed"], 7);
  EXPECT_EQ(j["sampling_seed"], 3);
}

TEST(Resolve, RateTraceAndRequestCount) {
  RunSettings s = base();
  s.rate = "2.5";
  s.duration_s = 10;
  RunConfig c = resolve(s);
  EXPECT_EQ(c.load.rate, 2.5);
  EXPECT_EQ(requests_to_draw(c), 25);  // round(X * T)
  s.num_requests = 7;  // -n wins over X * T
  EXPECT_EQ(requests_to_draw(resolve(s)), 7);

  s = base();
  s.rate = "INF";
  EXPECT_EQ(error_of(s), "-X inf needs -n N (the number of requests)");
  s.num_requests = 12;
  c = resolve(s);
  EXPECT_TRUE(c.load.rate && std::isinf(*c.load.rate));
  EXPECT_EQ(requests_to_draw(c), 12);
  EXPECT_EQ(to_json(c)["rate"], "inf");

  s = base();
  s.rate = "0.001";
  s.duration_s = 60;
  EXPECT_EQ(error_of(s), "-X × -T gives no requests; raise -T or give -n");

  // A trace without -X keeps its own times (no rate); with -X it is rescaled to it; -X inf makes no sense.
  const std::filesystem::path dir = testing_paths::fresh_test_dir("resolve_trace_");
  const std::string trace = (dir / "t.txt").string();
  std::ofstream(trace) << "0\n0.5\n1\n";
  s = base();
  s.trace = trace;
  c = resolve(s);
  EXPECT_FALSE(c.load.rate.has_value());
  EXPECT_EQ(requests_to_draw(c), 0);  // the trace's length decides
  EXPECT_EQ(to_json(c)["rate"], "trace");
  s.rate = "4";
  EXPECT_EQ(resolve(s).load.rate, 4.0);
  s.rate = "inf";
  EXPECT_EQ(error_of(s).substr(0, 22), "--trace with -X inf: g");
  s.rate = "";
  s.reference = trace;  // exists; the combination is refused before the file is read
  EXPECT_EQ(error_of(s), "--trace and --reference are exclusive (a reference replays its own requests)");
}

TEST(Resolve, ReferenceRunsAllAtOnceByDefault) {
  const std::filesystem::path dir = testing_paths::fresh_test_dir("resolve_ref_");
  const std::string ref = (dir / "base.h5").string();
  std::ofstream(ref) << "x";  // resolve only checks that it exists; the run reads it
  RunSettings s = base();
  s.reference = ref;
  const RunConfig c = resolve(s);
  EXPECT_TRUE(c.load.rate && std::isinf(*c.load.rate));
  EXPECT_EQ(requests_to_draw(c), 0);  // all of BASE
  EXPECT_EQ(c.workload.dataset, "");
}

TEST(Resolve, SizesHaveOneMeaning) {
  RunSettings s = base();
  s.kv_memory = "2GB";
  EXPECT_EQ(resolve(s).sut.engine.kv_memory_bytes, 2000000000);
  s.kv_memory = "2GiB";
  EXPECT_EQ(resolve(s).sut.engine.kv_memory_bytes, int64_t(2) << 30);
  s.kv_memory = "512MiB";
  EXPECT_EQ(resolve(s).sut.engine.kv_memory_bytes, int64_t(512) << 20);
  s.kv_memory = "1.5 KB";
  EXPECT_EQ(resolve(s).sut.engine.kv_memory_bytes, 1500);
  s.kv_memory = "64M";  // K/M/G alone are binary
  EXPECT_EQ(resolve(s).sut.engine.kv_memory_bytes, int64_t(64) << 20);
}

TEST(Resolve, RemoteServer) {
  RunSettings s = base();
  s.endpoint = "http://127.0.0.1:8000//";
  s.api = "tgi";
  s.max_model_len = 4096;
  s.tokenizer = "tok.model";
  const RunConfig c = resolve(s);
  EXPECT_FALSE(c.sut.in_process());
  EXPECT_EQ(c.sut.http.endpoint, "http://127.0.0.1:8000");
  EXPECT_EQ(c.sut.http.api, HttpApi::kTgi);
  EXPECT_EQ(c.sut.http.tokenizer, "tok.model");
  EXPECT_EQ(c.sut.remote_max_model_len, 4096);
  EXPECT_EQ(to_json(c)["max_model_len"], 4096);
}

TEST(Resolve, PrefixCachingReachesTheEngineAndTheSettings) {
  RunSettings s = base();
  s.enable_prefix_caching = true;
  const RunConfig c = resolve(s);
  EXPECT_TRUE(c.sut.engine.enable_prefix_caching);
  EXPECT_EQ(to_json(c)["enable_prefix_caching"], true);
}

// --tensor-parallel-size: checked at resolve time against the model's shape (the 70B preset's table: no
// weights), the backend and the endpoint, each error naming the option.
TEST(Resolve, TensorParallelSizeIsCheckedAgainstTheModelAndBackend) {
  RunSettings s = base();
  EXPECT_EQ(resolve(s).sut.engine.tensor_parallel_size, 1);
  EXPECT_EQ(to_json(resolve(s))["tensor_parallel_size"], 1);
  s.model = "dummy:llama-2-70b";
  s.backend = "cuda";
  s.tensor_parallel_size = 3;
  EXPECT_EQ(error_of(s), "--tensor-parallel-size 3: dummy:llama-2-70b's attention heads (n_heads, "
                         "num_attention_heads) 64 does not split into 3 equal parts");
  s.tensor_parallel_size = 0;
  EXPECT_EQ(error_of(s), "--tensor-parallel-size 0: must be >= 1");
  s.backend = "cpu";
  s.tensor_parallel_size = 8;
  EXPECT_EQ(error_of(s).rfind("--tensor-parallel-size 8: the cpu backend runs on one device; tensor parallelism "
                              "needs the cuda backend", 0), 0u) << error_of(s);
  RunSettings r = base();
  r.endpoint = "http://h:1";
  r.tensor_parallel_size = 2;
  EXPECT_EQ(error_of(r), "--tensor-parallel-size: sets the in-process engine; a server (--endpoint) is started with "
                         "its own");
}

TEST(Resolve, SloParsing) {
  results::Slo s = parse_slo("ttft=200ms,tpot=50ms");
  EXPECT_DOUBLE_EQ(s.ttft_ms, 200);
  EXPECT_DOUBLE_EQ(s.tpot_ms, 50);
  EXPECT_DOUBLE_EQ(parse_slo("ttft=2s").ttft_ms, 2000);
  EXPECT_THROW(parse_slo("ttfb=2ms"), std::invalid_argument);
  EXPECT_THROW(parse_slo("ttft=fast"), std::invalid_argument);
  EXPECT_EQ(format_slo(parse_slo("ttft=0.2s,tpot=50ms")), "ttft=200ms,tpot=50ms");
}

TEST(ResolveSweep, GridAutoAndItsErrors) {
  RunSettings s = base();
  SweepSettings sw;
  SweepSpec spec = resolve_sweep(sw, s, resolve(s));
  EXPECT_EQ(spec.batch_sizes, (std::vector<int>{1, 16, 32, 64}));
  EXPECT_EQ(spec.qps, (std::vector<double>{0.5, 3, 4, 5}));
  EXPECT_FALSE(spec.settings.contains("rate"));
  EXPECT_EQ(spec.settings["qps"], "0.5,3,4,5");

  auto sweep_error = [&](const SweepSettings& w, const RunSettings& r) {
    try {
      resolve_sweep(w, r, resolve(r));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  sw.batch_sizes = "1,x";
  EXPECT_EQ(sweep_error(sw, s), "--batch-sizes: expected a comma-separated list of numbers > 0, got '1,x'");
  sw.batch_sizes = "1.5";
  EXPECT_EQ(sweep_error(sw, s), "--batch-sizes: '1.5' is not a whole number");
  sw = SweepSettings{};
  sw.qps = "auto";
  EXPECT_EQ(sweep_error(sw, s), "--qps auto needs --slo, e.g. --slo ttft=200ms,tpot=50ms");
  s.slo = "ttft=100ms";
  sw.qps_start = 8;
  sw.qps_max = 4;
  EXPECT_EQ(sweep_error(sw, s), "--qps-start/--qps-max: need 0 < start <= max");
  sw.qps_max = 16;
  spec = resolve_sweep(sw, s, resolve(s));
  ASSERT_TRUE(spec.auto_search.has_value());
  EXPECT_DOUBLE_EQ(spec.auto_search->slo.ttft_ms, 100);
  EXPECT_DOUBLE_EQ(spec.auto_search->start_qps, 8);

  RunSettings remote = base();
  remote.endpoint = "http://127.0.0.1:1";
  SweepSettings rw;
  EXPECT_EQ(resolve_sweep(rw, remote, resolve(remote)).batch_sizes, (std::vector<int>{0}));
  rw.batch_sizes_given = true;
  EXPECT_EQ(sweep_error(rw, remote), "--batch-sizes: a remote server (--endpoint) has its own batch size");
}

}  // namespace
}  // namespace loadgen
