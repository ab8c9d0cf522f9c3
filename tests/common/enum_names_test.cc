// test-deps: llm_common
// common/enum_names.h: the one table from an enum's values to the names users type and files hold — the name of
// a value, the value of a name, the choices as a message lists them, and a parse whose error names the option.
#include "common/enum_names.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

enum class Fruit { kApple, kBlueBerry, kCherry };
inline constexpr auto kFruitNames = common::enum_names<Fruit>(
    {{Fruit::kApple, "apple"}, {Fruit::kBlueBerry, "blue-berry"}, {Fruit::kCherry, "cherry"}});

enum class Pair { kOn, kOff };
inline constexpr auto kPairNames = common::enum_names<Pair>({{Pair::kOn, "on"}, {Pair::kOff, "off"}});

enum class Single { kOnly };
inline constexpr auto kSingleNames = common::enum_names<Single>({{Single::kOnly, "only"}});

std::string parse_error(std::string_view text, std::string_view what) {
  try {
    kFruitNames.parse(text, what);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(EnumNames, NameOfEachValue) {
  EXPECT_STREQ(kFruitNames.name(Fruit::kApple), "apple");
  EXPECT_STREQ(kFruitNames.name(Fruit::kBlueBerry), "blue-berry");
  EXPECT_STREQ(kFruitNames.name(Fruit::kCherry), "cherry");
}

TEST(EnumNames, NameOfAValueOutsideTheTableIsUnknown) {
  EXPECT_STREQ(kFruitNames.name(static_cast<Fruit>(42)), "unknown");
}

TEST(EnumNames, UsableAtCompileTime) {
  static_assert(kFruitNames.find("cherry") == Fruit::kCherry);
  static_assert(!kFruitNames.find("banana").has_value());
  static_assert(std::string_view(kFruitNames.name(Fruit::kApple)) == "apple");
  SUCCEED();
}

TEST(EnumNames, FindEveryName) {
  EXPECT_EQ(kFruitNames.find("apple"), Fruit::kApple);
  EXPECT_EQ(kFruitNames.find("blue-berry"), Fruit::kBlueBerry);
  EXPECT_EQ(kFruitNames.find("cherry"), Fruit::kCherry);
}

TEST(EnumNames, FindIsExactAndCaseSensitive) {
  EXPECT_FALSE(kFruitNames.find("Apple").has_value());
  EXPECT_FALSE(kFruitNames.find("apple ").has_value());
  EXPECT_FALSE(kFruitNames.find(" apple").has_value());
  EXPECT_FALSE(kFruitNames.find("app").has_value());
  EXPECT_FALSE(kFruitNames.find("").has_value());
  EXPECT_FALSE(kFruitNames.find("unknown").has_value());
}

TEST(EnumNames, NameAndFindRoundTrip) {
  for (Fruit f : {Fruit::kApple, Fruit::kBlueBerry, Fruit::kCherry}) EXPECT_EQ(kFruitNames.find(kFruitNames.name(f)), f);
}

TEST(EnumNames, ChoicesListThemInTableOrder) {
  EXPECT_EQ(kFruitNames.choices(), "apple, blue-berry or cherry");
  EXPECT_EQ(kPairNames.choices(), "on or off");
  EXPECT_EQ(kSingleNames.choices(), "only");
}

TEST(EnumNames, ParseAKnownName) {
  EXPECT_EQ(kFruitNames.parse("blue-berry", "--fruit"), Fruit::kBlueBerry);
  EXPECT_EQ(kPairNames.parse("off", "--switch"), Pair::kOff);
}

TEST(EnumNames, ParseAnUnknownNameNamesTheOptionTheChoicesAndTheText) {
  EXPECT_EQ(parse_error("banana", "--fruit"), "--fruit: expected apple, blue-berry or cherry, got 'banana'");
  EXPECT_EQ(parse_error("", "fruit"), "fruit: expected apple, blue-berry or cherry, got ''");
  EXPECT_EQ(parse_error("Cherry", "settings.fruit"), "settings.fruit: expected apple, blue-berry or cherry, got 'Cherry'");
}

TEST(EnumNames, ParseThrowsInvalidArgument) {
  EXPECT_THROW(kPairNames.parse("maybe", "--switch"), std::invalid_argument);
  try {
    kPairNames.parse("maybe", "--switch");
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "--switch: expected on or off, got 'maybe'");
  }
}
