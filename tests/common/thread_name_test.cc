// test-deps: loadgen_cli
// Thread names: what `top -H`, perf and gdb show for the threads loadgen starts (the logprobs dump's writer here),
// cut to Linux's 15 characters rather than refused.
#include <gtest/gtest.h>

#include <pthread.h>

#include <dirent.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "accuracy/logits_file.h"
#include "common/thread_name.h"
#include "loadgen/run/logprobs_dump.h"

namespace {

std::string name_of(pthread_t t) {
  char buf[64] = {0};
  pthread_getname_np(t, buf, sizeof buf);
  return buf;
}

// The names of this process's threads, from /proc/self/task/*/comm.
std::vector<std::string> thread_names() {
  std::vector<std::string> names;
  DIR* d = opendir("/proc/self/task");
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string n;
    if (std::getline(f, n)) names.push_back(n);
  }
  closedir(d);
  return names;
}

TEST(ThreadName, NamesTheCallingThreadAndCutsLongNames) {
  std::string short_name, long_name;
  std::thread([&] {
    common::name_this_thread("lg-test");
    short_name = name_of(pthread_self());
    common::name_this_thread("a-name-longer-than-fifteen");
    long_name = name_of(pthread_self());
  }).join();
  EXPECT_EQ(short_name, "lg-test");
  EXPECT_EQ(long_name, "a-name-longer-t");
}

TEST(ThreadName, TheLogprobsWriterThreadIsNamed) {
  const std::string path = ::testing::TempDir() + "thread_name_test.h5";
  std::vector<loadgen::WorkItem> items(1);
  accuracy::FileInfo info;
  info.vocab_size = 100;
  info.top_k = 2;
  {
    loadgen::LogprobsDump dump(path, info, items, loadgen::TokenIdMap(), nullptr);
    bool seen = false;
    for (int i = 0; i < 200 && !seen; ++i) {  // the thread names itself as it starts
      for (const std::string& n : thread_names()) seen = seen || n == "lg-logprobs";
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(seen) << "no thread named lg-logprobs";
  }
}

}  // namespace
