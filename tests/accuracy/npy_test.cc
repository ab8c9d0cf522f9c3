// test-deps: accuracy
// Our .npy reader and writer against numpy itself (Debian's python3-numpy, run as /usr/bin/python3): files
// numpy wrote (float32 and float16, header versions 1 and 2) read back value for value, files we wrote load in
// numpy unchanged; the contest's file names parsed, and a folder holding a badly named file reports it by name.
// Skips only when numpy is absent, and fails then under LLM_REQUIRE_SHARED=1 (CI).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "accuracy/npy.h"
#include "accuracy/npy_dir.h"
#include "support/process_util.h"
#include "support/test_paths.h"

namespace fs = std::filesystem;
using namespace accuracy;

namespace {

const char* kPython = "/usr/bin/python3";

bool have_numpy() {
  return process_util::run_shell(std::string(kPython) + " -c 'import numpy'").rc == 0;
}

#define REQUIRE_NUMPY()                                                                             \
  do {                                                                                              \
    if (!have_numpy()) {                                                                            \
      const char* req = std::getenv("LLM_REQUIRE_SHARED");                                         \
      if (req && std::string(req) == "1") GTEST_FAIL() << "python3-numpy is required (scripts/setup.sh)"; \
      GTEST_SKIP() << "python3-numpy absent (scripts/setup.sh installs it)";                       \
    }                                                                                               \
  } while (0)

process_util::CommandResult python(const fs::path& dir, const std::string& code) {
  const fs::path script = dir / "t.py";
  std::ofstream(script) << code;
  return process_util::run_shell(std::string(kPython) + " " + process_util::shell_quote(script));
}

TEST(Npy, ReadsWhatNumpyWrote) {
  REQUIRE_NUMPY();
  const fs::path dir = testing_paths::fresh_test_dir("npy_test_");
  // a[i, j] = (i * 7 + j) / 8 - 3 is exact in float16 and float32, so every value can be checked here.
  auto r = python(dir, "import numpy as np\n"
                       "a = (np.arange(3*5).reshape(3,5) % 7 + np.arange(3*5).reshape(3,5) // 5 * 7) / 8.0 - 3\n"
                       "d = '" + dir.string() + "'\n"
                       "np.save(d + '/f4.npy', a.astype('<f4'))\n"
                       "np.save(d + '/f2.npy', a.astype('<f2'))\n"
                       "with open(d + '/v2.npy', 'wb') as f: np.lib.format.write_array(f, a.astype('<f4'), version=(2, 0))\n"
                       "np.save(d + '/big.npy', a.astype('>f4'))\n"
                       "np.save(d + '/fortran.npy', np.asfortranarray(a.astype('<f4')))\n"
                       "np.save(d + '/f8.npy', a)\n");
  ASSERT_EQ(r.rc, 0) << r.output;
  for (const char* name : {"f4.npy", "f2.npy", "v2.npy"}) {
    const NpyArray a = read_npy((dir / name).string());
    ASSERT_EQ(a.shape, (std::vector<int64_t>{3, 5})) << name;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 5; ++j) {
        const int k = i * 5 + j;
        EXPECT_EQ(a.data[k], static_cast<float>((k % 7 + k / 5 * 7) / 8.0 - 3)) << name << " [" << i << "," << j << "]";
      }
  }
  for (const char* name : {"big.npy", "fortran.npy", "f8.npy"}) {
    try {
      read_npy((dir / name).string());
      ADD_FAILURE() << name << " was read";
    } catch (const NpyError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();  // names the file
    }
  }
  fs::remove_all(dir);
}

TEST(Npy, NumpyLoadsWhatWeWrote) {
  REQUIRE_NUMPY();
  const fs::path dir = testing_paths::fresh_test_dir("npy_test_");
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 10.0f);
  std::vector<float> v(4 * 33);
  for (float& x : v) x = d(rng);
  write_npy((dir / "ours.npy").string(), {4, 33}, v);
  std::ofstream raw(dir / "ours.raw", std::ios::binary);
  raw.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  raw.close();
  auto r = python(dir, "import numpy as np\nd = '" + dir.string() + "'\n"
                       "a = np.load(d + '/ours.npy')\n"
                       "b = np.fromfile(d + '/ours.raw', dtype='<f4').reshape(4, 33)\n"
                       "assert a.dtype == np.dtype('<f4') and a.shape == (4, 33) and a.flags['C_CONTIGUOUS'], (a.dtype, a.shape)\n"
                       "assert (a.view('<u4') == b.view('<u4')).all()\n"
                       "print('ok')\n");
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_EQ(r.last_line(), "ok") << r.output;
  fs::remove_all(dir);
}

TEST(NpyDir, ContestNamesAndABadNameReported) {
  NpyName n;
  ASSERT_TRUE(parse_npy_name("20251130-101500_17_64.npy", n));
  EXPECT_EQ(n.timestamp, "20251130-101500");
  EXPECT_EQ(n.request_id, "17");
  EXPECT_EQ(n.steps, 64);
  ASSERT_TRUE(parse_npy_name("2025_11_30_req-3_8.npy", n));  // a timestamp with '_' of its own
  EXPECT_EQ(n.request_id, "req-3");
  EXPECT_FALSE(parse_npy_name("17_64.npy", n));        // no timestamp
  EXPECT_FALSE(parse_npy_name("t_17_sixty.npy", n));   // steps not a number
  EXPECT_FALSE(parse_npy_name("t_17_64.npz", n));

  const fs::path dir = testing_paths::fresh_test_dir("npy_dir_test_");
  fs::create_directories(dir / "base");
  fs::create_directories(dir / "new");
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 3.0f, 2.0f, 1.0f};  // [2 steps, 3]
  for (const char* side : {"base", "new"}) {
    write_npy_request((dir / side).string(), "t1", "0", 2, 3, logits);
    write_npy_request((dir / side).string(), "t1", "1", 2, 3, logits);
  }
  fs::rename(dir / "new" / npy_name("t1", "1", 2), dir / "new" / "t1-1-2.npy");  // the contest lost one this way
  const ComparisonReport rep = compare_npy_dirs((dir / "base").string(), (dir / "new").string(), AllcloseOptions{});
  EXPECT_FALSE(rep.all_passed());
  EXPECT_EQ(rep.passed, 1);
  std::string all;
  for (const auto& e : rep.errors) all += e + "\n";
  EXPECT_NE(all.find("'t1-1-2.npy' does not follow <timestamp>_<request id>_<steps>.npy"), std::string::npos) << all;
  EXPECT_NE(all.find("request 1: missing from NEW"), std::string::npos) << all;
  fs::remove_all(dir);
}

}  // namespace
