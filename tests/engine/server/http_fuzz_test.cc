// test-deps: engine llm_server_lib
// Fuzzing llm-serve's JSON bodies in-process (dummy:tiny): random bytes, every prefix of valid bodies,
// byte mutations, huge numbers, wrong types, deep nesting, bad UTF-8, on every generate route. The server
// must answer each with a 4xx (or 200 when the mutation happens to be a valid request), never 5xx, never
// crash or hang. Run it under the asan preset too.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <thread>

#include "http_server.h"

using nlohmann::json;

namespace {

const char* kRoutes[] = {"/v1/completions", "/generate", "/generate_stream", "/models/llama2/generate"};

const std::vector<std::string>& seeds() {
  static const std::vector<std::string> s = {
      R"({"model":"m","prompt":"Hello there","max_tokens":4,"temperature":0,"top_p":0.9,"seed":3,"stop":["\n"],"stream":true})",
      R"({"prompt":[1,72,105],"max_tokens":3,"ignore_eos":true})",
      R"({"inputs":"Hi","parameters":{"max_new_tokens":3,"do_sample":true,"temperature":0.7,"top_k":5,"details":true},"stream":true})",
      R"({"inputs":"Hi","parameters":{"max_new_tokens":2,"stop":["x","y"],"return_full_text":true}})",
  };
  return s;
}

// Values that have broken JSON handlers elsewhere: out-of-range numbers, wrong types, odd strings.
const std::vector<std::string>& nasty_values() {
  static const std::vector<std::string> v = {
      "1e308", "1e999", "-1e999", "18446744073709551616", "9223372036854775807", "-9223372036854775808",
      "4294967297", "-0", "0.0000001", "NaN", "Infinity", "null", "true", "\"\"", "\"\\ud800\"", "\"\\u0000\"",
      "[]", "{}", "[[[[[[]]]]]]", "\"" + std::string(5000, 'z') + "\"", "[1,2,3]", "{\"a\":{\"b\":[null]}}",
      "\"\xff\xfe\"", "1.5", "-1", "0", "2147483648"};
  return v;
}

std::string replace_values(const std::string& body, std::mt19937& rng) {
  // Parse the seed, replace one random leaf (or add one random key) with a nasty raw value.
  json j = json::parse(body);
  std::vector<std::pair<json*, std::string>> slots;
  for (auto it = j.begin(); it != j.end(); ++it) slots.emplace_back(&j, it.key());
  if (j.contains("parameters"))
    for (auto it = j["parameters"].begin(); it != j["parameters"].end(); ++it) slots.emplace_back(&j["parameters"], it.key());
  const auto& nv = nasty_values();
  const std::string raw = nv[rng() % nv.size()];
  const std::string marker = "\"__FUZZ__\"";
  auto [obj, key] = slots[rng() % slots.size()];
  (*obj)[key] = "__FUZZ__";
  std::string s = j.dump();
  s.replace(s.find(marker), marker.size(), raw);
  return s;
}

std::string mutate_bytes(std::string s, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    size_t pos = rng() % s.size();
    switch (rng() % 3) {
      case 0: s[pos] = static_cast<char>(rng() % 256); break;
      case 1: s.erase(pos, 1 + rng() % 3); break;
      default: s.insert(pos, 1, "{}[]\",:0e-\\"[rng() % 12]); break;
    }
  }
  return s;
}

}  // namespace

TEST(HttpFuzz, OnlyClientErrorsNeverServerErrors) {
  engine::EngineConfig cfg;
  cfg.model = "dummy:tiny";
  cfg.max_model_len = 64;          // bounds the work of mutated bodies that are still valid
  cfg.kv_memory_bytes = 16 << 20;  // quick to allocate
  engine::Engine engine(cfg);
  server::ServerOptions o;
  o.port = 0;
  o.http_threads = 8;
  server::HttpServer http(engine, o);
  const int port = http.bind();
  std::thread th([&] { http.run(); });

  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  cli.set_keep_alive(true);
  cli.set_tcp_nodelay(true);
  std::mt19937 rng(12345);
  std::map<int, int> statuses;
  int sent = 0;
  auto check = [&](const char* route, const std::string& body) {
    auto r = cli.Post(route, body, "application/json");
    ++sent;
    ASSERT_TRUE(r) << "no answer (" << httplib::to_string(r.error()) << ") for " << route << " " << body.substr(0, 200);
    statuses[r->status]++;
    EXPECT_TRUE((r->status >= 400 && r->status < 500) || r->status == 200)
        << r->status << " for " << route << " body " << body.substr(0, 200) << " → " << r->body.substr(0, 300);
    if (r->status >= 400) {
      EXPECT_TRUE(json::accept(r->body)) << "error body is not JSON: " << r->body.substr(0, 200);
    }
  };

  for (const char* route : kRoutes) {
    // Every prefix of every seed (truncated bodies).
    for (const auto& s : seeds())
      for (size_t n = 0; n < s.size(); n += 3) check(route, s.substr(0, n));
    // Random bytes.
    for (int i = 0; i < 40; ++i) {
      std::string junk(rng() % 200, '\0');
      for (char& c : junk) c = static_cast<char>(rng() % 256);
      check(route, junk);
    }
    // Nasty values in every field, and byte-level mutations.
    for (int i = 0; i < 120; ++i) check(route, replace_values(seeds()[rng() % seeds().size()], rng));
    for (int i = 0; i < 80; ++i) check(route, mutate_bytes(seeds()[rng() % seeds().size()], rng));
    // Deep nesting, as a value and as the whole body.
    check(route, std::string(100000, '[') + std::string(100000, ']'));
    check(route, R"({"prompt":)" + std::string(5000, '{') + "}");
    check(route, R"({"inputs":"x","parameters":)" + std::string(3000, '[') + std::string(3000, ']') + "}");
  }
  auto h = cli.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  http.stop();
  th.join();
  std::string summary;
  for (auto [st, n] : statuses) summary += " " + std::to_string(st) + ":" + std::to_string(n);
  std::printf("[ info ] %d fuzzed bodies, statuses%s\n", sent, summary.c_str());
  EXPECT_GT(statuses[400], sent / 2);
}
