// Where tests find the shared assets and the built binaries.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace testing_paths {

/// LLM_SHARED_DIR from the environment, else the CMake cache value (default ../shared).
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("LLM_SHARED_DIR"); env && *env) return env;
  return LLM_SHARED_DIR;
}

inline std::filesystem::path shared(const std::string& rel) { return shared_dir() / rel; }
inline std::filesystem::path source(const std::string& rel) { return std::filesystem::path(LLM_SOURCE_DIR) / rel; }
inline std::filesystem::path binary(const std::string& rel) { return std::filesystem::path(LLM_BINARY_DIR) / rel; }

/// An empty scratch directory for the running test: <tmp>/<prefix><test name>_<pid> (emptied if it exists).
inline std::filesystem::path fresh_test_dir(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
      (prefix + (info ? info->name() : "no_test") + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// True when the shared assets are there. CI sets LLM_REQUIRE_SHARED=1 so a missing asset fails instead.
inline bool have_shared(const std::string& rel) {
  if (std::filesystem::exists(shared(rel))) return true;
  const char* req = std::getenv("LLM_REQUIRE_SHARED");
  if (req && std::string(req) == "1") ADD_FAILURE() << "missing shared asset " << shared(rel);
  return false;
}

}  // namespace testing_paths

/// Skips the test (or fails it under LLM_REQUIRE_SHARED=1) when a shared asset is absent.
#define REQUIRE_SHARED(rel)                                                          \
  do {                                                                               \
    if (!testing_paths::have_shared(rel)) GTEST_SKIP() << "no shared asset " << rel; \
  } while (0)
