// test-deps: llm_common
// common/byte_size.h: sizes as users write them, one meaning everywhere — KiB.. binary, KB.. decimal, K/M/G/T
// binary, B or no unit bytes, fractions and a space before the unit allowed; every error starts with `what`.
#include "common/byte_size.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

using common::parse_byte_size;

constexpr int64_t kKi = int64_t{1} << 10, kMi = int64_t{1} << 20, kGi = int64_t{1} << 30, kTi = int64_t{1} << 40;

// The message of the std::invalid_argument thrown for `text`, or "(no error)".
std::string error_of(const std::string& text, const std::string& what = "--kv-memory") {
  try {
    const int64_t v = parse_byte_size(text, what);
    return "(no error: " + std::to_string(v) + ")";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(ByteSize, BinaryUnitsArePowersOf1024) {
  EXPECT_EQ(parse_byte_size("1KiB", "x"), kKi);
  EXPECT_EQ(parse_byte_size("512MiB", "x"), 512 * kMi);
  EXPECT_EQ(parse_byte_size("2GiB", "x"), 2 * kGi);
  EXPECT_EQ(parse_byte_size("3TiB", "x"), 3 * kTi);
}

TEST(ByteSize, DecimalUnitsArePowersOf1000) {
  EXPECT_EQ(parse_byte_size("1KB", "x"), 1000);
  EXPECT_EQ(parse_byte_size("512MB", "x"), 512'000'000);
  EXPECT_EQ(parse_byte_size("2GB", "x"), 2'000'000'000);
  EXPECT_EQ(parse_byte_size("3TB", "x"), 3'000'000'000'000);
}

TEST(ByteSize, SingleLetterUnitsAreBinary) {
  EXPECT_EQ(parse_byte_size("4K", "x"), 4 * kKi);
  EXPECT_EQ(parse_byte_size("4M", "x"), 4 * kMi);
  EXPECT_EQ(parse_byte_size("4G", "x"), 4 * kGi);
  EXPECT_EQ(parse_byte_size("4T", "x"), 4 * kTi);
  EXPECT_EQ(parse_byte_size("1G", "x"), parse_byte_size("1GiB", "x"));
  EXPECT_NE(parse_byte_size("1G", "x"), parse_byte_size("1GB", "x"));
}

TEST(ByteSize, BareNumberAndBAreBytes) {
  EXPECT_EQ(parse_byte_size("536870912", "x"), 536870912);
  EXPECT_EQ(parse_byte_size("1", "x"), 1);
  EXPECT_EQ(parse_byte_size("100B", "x"), 100);
  EXPECT_EQ(parse_byte_size("100 B", "x"), 100);
  EXPECT_EQ(parse_byte_size("1e3", "x"), 1000);
}

TEST(ByteSize, FractionsAndASpaceBeforeTheUnit) {
  EXPECT_EQ(parse_byte_size("1.5GiB", "x"), 3 * kGi / 2);
  EXPECT_EQ(parse_byte_size("1.5 GiB", "x"), 3 * kGi / 2);
  EXPECT_EQ(parse_byte_size("0.5 MiB", "x"), kMi / 2);
  EXPECT_EQ(parse_byte_size("2.5GB", "x"), 2'500'000'000);
  EXPECT_EQ(parse_byte_size("1 KB", "x"), 1000);
}

TEST(ByteSize, LargeSizesThatFit) {
  EXPECT_EQ(parse_byte_size("1024TiB", "x"), 1024 * kTi);
  EXPECT_EQ(parse_byte_size("8000000TB", "x"), int64_t{8'000'000'000'000'000'000});
}

TEST(ByteSize, UnknownUnitIsAnErrorNamingTheUnitAndTheUnits) {
  for (const std::string text : {"12XB", "12 kb", "12kib", "12 PiB", "1GiB/s", "2GiBB", "7 bytes"}) {
    const std::string e = error_of(text);
    EXPECT_TRUE(starts_with(e, "--kv-memory: ")) << text << " -> " << e;
    EXPECT_TRUE(contains(e, "'" + text + "'")) << text << " -> " << e;
    EXPECT_TRUE(contains(e, "KiB")) << text << " -> " << e;
  }
  EXPECT_TRUE(contains(error_of("12XB"), "unknown unit 'XB'")) << error_of("12XB");
}

TEST(ByteSize, NoNumberIsAnError) {
  for (const std::string text : {"", "GiB", "MB", "abc", ".", "-", "e", "inf", "nan", "1.2.3GiB", "5E"}) {
    const std::string e = error_of(text);
    EXPECT_TRUE(starts_with(e, "--kv-memory: ")) << "'" << text << "' -> " << e;
    EXPECT_TRUE(contains(e, "'" + text + "'")) << "'" << text << "' -> " << e;
  }
}

TEST(ByteSize, ZeroAndNegativeAreErrors) {
  for (const std::string text : {"0", "0B", "0GiB", "-0", "-1", "-1GiB", "-0.5 MB"}) {
    const std::string e = error_of(text, "llm-serve --kv-memory");
    EXPECT_TRUE(starts_with(e, "llm-serve --kv-memory: ")) << text << " -> " << e;
    EXPECT_TRUE(contains(e, "> 0")) << text << " -> " << e;
    EXPECT_TRUE(contains(e, text)) << text << " -> " << e;
  }
}

TEST(ByteSize, LessThanOneByteIsAnError) {
  for (const std::string text : {"0.4", "0.5B", "1e-4KiB"}) {
    const std::string e = error_of(text);
    EXPECT_TRUE(starts_with(e, "--kv-memory: ")) << text << " -> " << e;
    EXPECT_TRUE(contains(e, text)) << text << " -> " << e;
  }
}

TEST(ByteSize, TooLargeIsAnError) {
  for (const std::string text : {"8388608TiB", "10000000TB", "1e19", "1e300", "1e400", "99999999999999999999"}) {
    const std::string e = error_of(text, "kv_memory");
    EXPECT_TRUE(starts_with(e, "kv_memory: ")) << text << " -> " << e;
    EXPECT_TRUE(contains(e, text)) << text << " -> " << e;
  }
  EXPECT_TRUE(contains(error_of("8388608TiB"), "too large")) << error_of("8388608TiB");
}

TEST(ByteSize, ErrorsAreInvalidArgument) {
  EXPECT_THROW(parse_byte_size("12XB", "x"), std::invalid_argument);
  EXPECT_THROW(parse_byte_size("", "x"), std::invalid_argument);
  EXPECT_THROW(parse_byte_size("0", "x"), std::invalid_argument);
  EXPECT_THROW(parse_byte_size("1e30", "x"), std::invalid_argument);
}

TEST(ByteSize, HelpLineNamesEveryUnitFamily) {
  const std::string units = common::kByteSizeUnits;
  for (const char* u : {"KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB", "TB", "K/M/G/T"}) EXPECT_TRUE(contains(units, u)) << u;
}
