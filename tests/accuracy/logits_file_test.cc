// test-deps: accuracy
// LogitsWriter/LogitsReader: the reference files, round trips (f32, f16, gzip), SHA-256, float16 rounding,
// crash safety (SIGKILL leaves nothing at the final path) and the error messages for bad files.
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>

#include "accuracy/float16.h"
#include "accuracy/logits_file.h"
#include "accuracy/sha256.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;
using namespace accuracy;

namespace {

// A fresh empty folder per test.
fs::path temp_dir() { return testing_paths::fresh_test_dir("logits_file_test_"); }

RequestLogits make_request(const std::string& id, int n_prompt, int n_steps, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  std::normal_distribution<float> logit(0.0f, 4.0f);
  RequestLogits r;
  r.id = id;
  for (int i = 0; i < n_prompt; ++i) r.prompt_tokens.push_back(tok(rng));
  for (int i = 0; i < n_steps; ++i) r.tokens.push_back(tok(rng));
  for (int i = 0; i < n_steps * vocab; ++i) r.logits.push_back(logit(rng));
  r.prompt_text = "prompt of request " + id + " — with UTF-8 ✓";
  return r;
}

FileInfo file_info(std::string model, int vocab, std::string producer = "") {
  FileInfo info;
  info.model = std::move(model);
  info.vocab_size = vocab;
  info.producer = std::move(producer);
  return info;
}

std::string sha_of(const std::string& s) {
  return sha256_hex(std::as_bytes(std::span(s.data(), s.size())));
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

}  // namespace

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha_of(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {  // expected values from coreutils sha256sum
  EXPECT_EQ(sha_of(std::string(55, 'a')), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha_of(std::string(56, 'a')), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha_of(std::string(63, 'a')), "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(sha_of(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(sha_of(std::string(119, 'a')), "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
}

TEST(Sha256, PromptHashIsOverInt32LittleEndianBytes) {
  const std::vector<int32_t> tokens = {1, 74, -2, 0x01020304};
  const std::string bytes("\x01\0\0\0\x4a\0\0\0\xfe\xff\xff\xff\x04\x03\x02\x01", 16);
  EXPECT_EQ(prompt_sha256(tokens), sha_of(bytes));
}

// Plain reference for float → half: binary search over the (monotonic) positive half bit patterns, then pick
// the nearer neighbour in double arithmetic, ties to the even pattern.
uint16_t reference_float_to_half(float x) {
  if (std::isnan(x)) return 0x7e00;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double a = std::fabs(static_cast<double>(x));
  if (a >= 65520.0) return sign | 0x7c00;
  uint16_t lo = 0, hi = 0x7bff;  // largest pattern with value <= a
  while (lo < hi) {
    uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (static_cast<double>(half_to_float(mid)) <= a) lo = mid; else hi = static_cast<uint16_t>(mid - 1);
  }
  if (lo == 0x7bff) return sign | lo;
  double below = half_to_float(lo), above = half_to_float(static_cast<uint16_t>(lo + 1));
  uint16_t pick = (a - below < above - a) ? lo : (a - below > above - a) ? static_cast<uint16_t>(lo + 1)
                                                 : ((lo & 1) ? static_cast<uint16_t>(lo + 1) : lo);
  return sign | pick;
}

TEST(Float16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << h;
      continue;
    }
    ASSERT_EQ(float_to_half(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Float16, MatchesReferenceRounding) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 300000; ++i) {
    // Mix exponents across the whole half range (and beyond) so subnormals and overflow are hit.
    uint32_t u = (bits(rng) & 0x807fffffu) | ((100u + bits(rng) % 50u) << 23);
    float f = std::bit_cast<float>(u);
    ASSERT_EQ(float_to_half(f), reference_float_to_half(f)) << "float " << f;
  }
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), 0x3c00);          // tie → even (1.0)
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048), 0x3c02);          // tie → even (1 + 2^-9)
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);                    // rounds to infinity
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);       // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);       // tie → even (zero)
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);       // tie → even (2 × 2^-24)
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}

TEST(LogitsReader, ReadsStories260KReference) {
  REQUIRE_SHARED("references/stories260K_visible.h5");
  LogitsReader reader(testing_paths::shared("references/stories260K_visible.h5").string());
  EXPECT_EQ(reader.info().model, "stories260K");
  EXPECT_EQ(reader.info().vocab_size, 512);
  EXPECT_EQ(reader.info().dtype, LogitsDType::kFloat32);
  EXPECT_NE(reader.info().producer.find("transformers"), std::string::npos);
  EXPECT_EQ(reader.ids(), (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7"}));
  for (const auto& id : reader.ids()) {
    RequestLogits r = reader.read(id);
    EXPECT_EQ(r.n_steps(), 64) << id;
    EXPECT_EQ(r.logits.size(), 64u * 512u) << id;
    EXPECT_EQ(r.prompt_tokens.at(0), 1) << id;  // bos
    // The file's prompt_sha256 (written by Python's hashlib) equals ours over the stored tokens.
    EXPECT_EQ(r.prompt_sha256, prompt_sha256(r.prompt_tokens)) << id;
    for (float v : r.logits) ASSERT_TRUE(std::isfinite(v)) << id;
  }
  RequestLogits r0 = reader.read("0");
  EXPECT_EQ(r0.prompt_sha256, "896439ce102988b8683a69599568043236b9efb7d5c478801cfeffee33427987");
  EXPECT_EQ(std::vector<int32_t>(r0.prompt_tokens.begin(), r0.prompt_tokens.begin() + 5),
            (std::vector<int32_t>{1, 74, 108, 121, 104}));  // "Give" as byte tokens (byte + 3)
}

TEST(LogitsReader, ReadsTinyLlamaReference) {
  REQUIRE_SHARED("references/tiny-llama_visible.h5");
  LogitsReader reader(testing_paths::shared("references/tiny-llama_visible.h5").string());
  EXPECT_EQ(reader.info().model, "tiny-llama");
  EXPECT_EQ(reader.info().vocab_size, 32000);
  ASSERT_EQ(reader.ids().size(), 8u);
  EXPECT_EQ(reader.ids().front(), "100");
  EXPECT_EQ(reader.ids().back(), "107");
  for (const auto& id : reader.ids()) {
    RequestLogits r = reader.read(id);
    EXPECT_EQ(r.n_steps(), 12) << id;
    EXPECT_EQ(r.logits.size(), 12u * 32000u) << id;
    EXPECT_EQ(r.prompt_sha256, prompt_sha256(r.prompt_tokens)) << id;
    EXPECT_EQ(r.prompt_text.rfind("Below is an instruction", 0), 0u) << id;
  }
  EXPECT_EQ(reader.read("100").tokens.at(0), 20650);
}

TEST(LogitsFile, RoundTripFloat32) {
  fs::path dir = temp_dir();
  std::string path = (dir / "run.h5").string();
  std::vector<RequestLogits> written = {make_request("10", 7, 5, 50, 1), make_request("2", 3, 0, 50, 2),
                                        make_request("0", 0, 3, 50, 3)};
  {
    LogitsWriter w(path, file_info("m", 50, "test"));
    for (const auto& r : written) w.write(r);
    EXPECT_FALSE(fs::exists(path));  // still under the temporary name
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    w.close();
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  LogitsReader reader(path);
  EXPECT_EQ(reader.info().model, "m");
  EXPECT_EQ(reader.info().producer, "test");
  EXPECT_EQ(reader.info().dtype, LogitsDType::kFloat32);
  EXPECT_EQ(reader.ids(), (std::vector<std::string>{"0", "2", "10"}));  // numeric order
  EXPECT_TRUE(reader.has("2"));
  EXPECT_FALSE(reader.has("3"));
  for (const auto& w : written) {
    RequestLogits r = reader.read(w.id);
    EXPECT_EQ(r.prompt_tokens, w.prompt_tokens);
    EXPECT_EQ(r.tokens, w.tokens);
    EXPECT_EQ(r.logits, w.logits);  // bit-exact
    EXPECT_EQ(r.prompt_text, w.prompt_text);
    EXPECT_EQ(r.prompt_sha256, prompt_sha256(w.prompt_tokens));
  }
  fs::remove_all(dir);
}

// The dtype a writer is given in FileInfo is the dtype it stores and reports (before, a second setting in
// WriterOptions, float32 by default, silently overwrote it).
TEST(LogitsFile, StoresTheDtypeItsFileInfoNames) {
  fs::path dir = temp_dir();
  std::string path = (dir / "info_dtype.h5").string();
  RequestLogits w = make_request("1", 3, 2, 64, 5);
  w.logits[0] = 1.0f + 1.0f / 4096;  // not representable in float16: stored as 1
  FileInfo info = file_info("m", 64);
  info.dtype = LogitsDType::kFloat16;
  {
    LogitsWriter writer(path, info);
    writer.write(w);
    writer.close();
  }
  LogitsReader reader(path);
  EXPECT_EQ(reader.info().dtype, LogitsDType::kFloat16);
  EXPECT_EQ(reader.read("1").logits[0], 1.0f);
}

TEST(LogitsFile, RoundTripFloat16) {
  fs::path dir = temp_dir();
  std::string path = (dir / "half.h5").string();
  RequestLogits w = make_request("4", 6, 9, 128, 4);
  w.logits[0] = 70000.0f;  // beyond half range → inf
  {
    FileInfo info = file_info("m", 128);
    info.dtype = LogitsDType::kFloat16;
    LogitsWriter writer(path, info);
    writer.write(w);
    writer.close();
  }
  LogitsReader reader(path);
  EXPECT_EQ(reader.info().dtype, LogitsDType::kFloat16);
  RequestLogits r = reader.read("4");
  ASSERT_EQ(r.logits.size(), w.logits.size());
  EXPECT_TRUE(std::isinf(r.logits[0]));
  for (size_t i = 1; i < w.logits.size(); ++i) {
    ASSERT_EQ(r.logits[i], half_to_float(float_to_half(w.logits[i]))) << i;
    ASSERT_LE(std::fabs(r.logits[i] - w.logits[i]), std::fabs(w.logits[i]) * (1.0f / 2048) + 1e-7f) << i;
  }
  // Stored as a 2-byte IEEE float, so numpy/h5py read it as float16.
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "/requests/4/logits", H5P_DEFAULT);
  hid_t t = H5Dget_type(ds);
  EXPECT_EQ(H5Tget_class(t), H5T_FLOAT);
  EXPECT_EQ(H5Tget_size(t), 2u);
  // HDF5's own float16 → float conversion (what h5py/numpy rely on) reads the same values as ours.
  std::vector<float> via_hdf5(r.logits.size());
  ASSERT_GE(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, via_hdf5.data()), 0);
  for (size_t i = 1; i < via_hdf5.size(); ++i) ASSERT_EQ(via_hdf5[i], r.logits[i]) << i;
  H5Tclose(t); H5Dclose(ds); H5Fclose(f);
  fs::remove_all(dir);
}

TEST(LogitsFile, RoundTripCompressedChunkedByStep) {
  fs::path dir = temp_dir();
  std::string plain = (dir / "plain.h5").string(), packed = (dir / "packed.h5").string();
  RequestLogits w = make_request("1", 5, 20, 1000, 5);
  for (size_t i = 0; i < w.logits.size(); ++i) w.logits[i] = static_cast<float>(i % 7);  // compressible
  for (auto [path, level] : {std::pair{plain, 0}, std::pair{packed, 6}}) {
    LogitsWriter writer(path, file_info("m", 1000), {.compression = level});
    writer.write(w);
    writer.close();
  }
  EXPECT_EQ(LogitsReader(packed).read("1").logits, w.logits);
  EXPECT_LT(fs::file_size(packed) * 4, fs::file_size(plain));
  hid_t f = H5Fopen(packed.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "/requests/1/logits", H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(ds);
  hsize_t chunk[2] = {0, 0};
  EXPECT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED);
  EXPECT_EQ(H5Pget_chunk(dcpl, 2, chunk), 2);
  EXPECT_EQ(chunk[0], 1u);
  EXPECT_EQ(chunk[1], 1000u);
  EXPECT_EQ(H5Pget_nfilters(dcpl), 1);
  H5Pclose(dcpl); H5Dclose(ds); H5Fclose(f);
  fs::remove_all(dir);
}

TEST(LogitsWriter, DestroyedWithoutCloseLeavesNothing) {
  fs::path dir = temp_dir();
  std::string path = (dir / "abandoned.h5").string();
  {
    LogitsWriter w(path, file_info("m", 10));
    w.write(make_request("0", 2, 2, 10, 6));
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  fs::remove_all(dir);
}

TEST(LogitsWriter, SigkillMidRunLeavesNoFileAtFinalPath) {
  fs::path dir = temp_dir();
  std::string path = (dir / "killed.h5").string();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // writes 3 requests, says so, then keeps "running" until killed
    ::close(ready[0]);
    LogitsWriter w(path, file_info("m", 64));
    // The default flush interval (1 s): the third write comes after it, so it flushes all three.
    for (int i = 0; i < 3; ++i) {
      if (i == 2) std::this_thread::sleep_for(std::chrono::milliseconds(1100));
      w.write(make_request(std::to_string(i), 4, 6, 64, 10 + i));
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
  // Flushed, so what the killed run left under the temporary name is readable.
  ASSERT_TRUE(fs::exists(path + ".tmp"));
  LogitsReader partial(path + ".tmp");
  EXPECT_EQ(partial.ids(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(partial.read("2").logits, make_request("2", 4, 6, 64, 12).logits);
  fs::remove_all(dir);
}

TEST(LogitsWriter, RejectsDuplicateIdAndBadShapes) {
  fs::path dir = temp_dir();
  std::string path = (dir / "dup.h5").string();
  LogitsWriter w(path, file_info("m", 10));
  w.write(make_request("3", 2, 2, 10, 7));
  EXPECT_EQ(error_of([&] { w.write(make_request("3", 2, 2, 10, 8)); }),
            "logits file " + path + ": /requests/3: duplicate request id (already written)");
  RequestLogits bad = make_request("4", 2, 2, 10, 9);
  bad.logits.pop_back();
  EXPECT_EQ(error_of([&] { w.write(bad); }),
            "logits file " + path + ": /requests/4: logits has 19 values, expected n_steps 2 x vocab_size 10 = 20");
  RequestLogits wrong_sha = make_request("5", 2, 2, 10, 9);
  wrong_sha.prompt_sha256 = "00";
  EXPECT_NE(error_of([&] { w.write(wrong_sha); }).find("/requests/5: prompt_sha256 00 does not match"),
            std::string::npos);
  // A dtype other than float32/float16 cannot reach the writer: it is an enum, parsed (once) from the text.
  try {
    parse_logits_dtype("bfloat16", "--logits-dtype");
    ADD_FAILURE() << "bfloat16 parsed";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "--logits-dtype: expected float32 or float16, got 'bfloat16'");
  }
  EXPECT_NE(error_of([&] { LogitsWriter((dir / "no/such/dir/x.h5").string(), file_info("", 10)); })
                .find("cannot create"),
            std::string::npos);
  w.close();
  EXPECT_EQ(LogitsReader(path).ids(), (std::vector<std::string>{"3"}));
  fs::remove_all(dir);
}

TEST(LogitsReader, ErrorsNameTheFileAndObject) {
  fs::path dir = temp_dir();
  const std::string missing = (dir / "missing.h5").string();
  EXPECT_EQ(error_of([&] { LogitsReader r(missing); }), "logits file " + missing + ": no such file");

  const std::string text = (dir / "text.h5").string();
  std::ofstream(text) << "not hdf5\n";
  EXPECT_EQ(error_of([&] { LogitsReader r(text); }),
            "logits file " + text + ": not an HDF5 file (so not an llm-logits file)");

  const std::string bare = (dir / "bare.h5").string();
  H5Fclose(H5Fcreate(bare.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  EXPECT_EQ(error_of([&] { LogitsReader r(bare); }),
            "logits file " + bare + ": not an llm-logits file (the root has no 'format' attribute)");

  // A valid file, then damaged by hand: one request loses its logits, another gets the wrong vocab width.
  const std::string path = (dir / "damaged.h5").string();
  {
    LogitsWriter w(path, file_info("m", 10));
    w.write(make_request("0", 2, 3, 10, 1));
    w.write(make_request("1", 2, 3, 10, 2));
    w.close();
  }
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "/requests/0/logits", H5P_DEFAULT);
  H5Ldelete(f, "/requests/1/logits", H5P_DEFAULT);
  hsize_t dims[2] = {3, 11};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t ds = H5Dcreate2(f, "/requests/1/logits", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds); H5Sclose(space); H5Fclose(f);

  LogitsReader reader(path);
  EXPECT_EQ(error_of([&] { reader.read("0"); }), "logits file " + path + ": /requests/0/logits: missing dataset");
  EXPECT_EQ(error_of([&] { reader.read("1"); }),
            "logits file " + path + ": /requests/1/logits: shape [3, 11] does not match [n_steps, vocab_size] = [3, 10]");
  EXPECT_EQ(error_of([&] { reader.read("9"); }), "logits file " + path + ": /requests/9: no such request");
  fs::remove_all(dir);
}
