// test-deps: llm_common
// common/format_number.h: numbers for people — up to N significant digits, no trailing zeros, %g only for very
// small or large magnitudes, "-" for what is not a number.
#include "common/format_number.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using common::format_number;

TEST(FormatNumber, DefaultIsFourSignificantDigits) {
  EXPECT_EQ(format_number(3.14159265), "3.142");
  EXPECT_EQ(format_number(12.34567), "12.35");
  EXPECT_EQ(format_number(0.123456), "0.1235");
  EXPECT_EQ(format_number(0.00123456), "0.001235");
}

TEST(FormatNumber, SignificantDigitsAsAsked) {
  EXPECT_EQ(format_number(3.14159265, 2), "3.1");
  EXPECT_EQ(format_number(3.14159265, 6), "3.14159");
  EXPECT_EQ(format_number(2.8125, 6), "2.8125");
  EXPECT_EQ(format_number(1.0 / 3.0, 6), "0.333333");
  EXPECT_EQ(format_number(2.0 / 3.0, 3), "0.667");
}

TEST(FormatNumber, TrailingZerosAndPointDropped) {
  EXPECT_EQ(format_number(0.5), "0.5");
  EXPECT_EQ(format_number(0.5, 6), "0.5");
  EXPECT_EQ(format_number(3.0), "3");
  EXPECT_EQ(format_number(100.0), "100");
  EXPECT_EQ(format_number(12.5), "12.5");
  EXPECT_EQ(format_number(1.25, 6), "1.25");
  EXPECT_EQ(format_number(0.0012), "0.0012");
}

TEST(FormatNumber, IntegerPartIsNeverCut) {
  // Beyond `significant` digits to the left of the point: all of them, no exponent.
  EXPECT_EQ(format_number(1234.5678), "1235");
  EXPECT_EQ(format_number(123456.7), "123457");
  EXPECT_EQ(format_number(999999999.0), "999999999");
}

TEST(FormatNumber, RoundingIntoTheNextPowerOfTen) {
  EXPECT_EQ(format_number(9.99996), "10");
  EXPECT_EQ(format_number(0.999996), "1");
  EXPECT_EQ(format_number(99.9996), "100");
}

TEST(FormatNumber, ZeroAndNegatives) {
  EXPECT_EQ(format_number(0.0), "0");
  EXPECT_EQ(format_number(-0.0), "0");
  EXPECT_EQ(format_number(-2.5), "-2.5");
  EXPECT_EQ(format_number(-3.14159265), "-3.142");
  EXPECT_EQ(format_number(-1234.5678), "-1235");
}

TEST(FormatNumber, NonFiniteIsADash) {
  EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(format_number(std::numeric_limits<double>::infinity()), "-");
  EXPECT_EQ(format_number(-std::numeric_limits<double>::infinity()), "-");
  EXPECT_EQ(format_number(std::numeric_limits<double>::quiet_NaN(), 6), "-");
}

TEST(FormatNumber, SmallMagnitudesInG) {
  EXPECT_EQ(format_number(1e-5), "1e-05");
  EXPECT_EQ(format_number(1.23456e-5), "1.235e-05");
  EXPECT_EQ(format_number(-4e-7), "-4e-07");
  EXPECT_EQ(format_number(1.5e-9, 2), "1.5e-09");
}

TEST(FormatNumber, LargeMagnitudesInG) {
  EXPECT_EQ(format_number(1e9), "1e+09");
  EXPECT_EQ(format_number(1.5e10), "1.5e+10");
  EXPECT_EQ(format_number(1234567890123.0), "1.235e+12");
  EXPECT_EQ(format_number(-2e12), "-2e+12");
}

TEST(FormatNumber, EdgesOfTheOrdinaryRange) {
  EXPECT_EQ(format_number(1e-4), "0.0001");
  EXPECT_EQ(format_number(0.00012346), "0.0001235");
  EXPECT_EQ(format_number(0.99e-4), "9.9e-05");
}
