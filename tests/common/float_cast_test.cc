// Narrowing a double from anywhere to float (common/float_cast.h), the bound a client's float is
// refused at (core/float_range.h), and a model file's numbers as indices and counts
// (runtimes/tree/number_cast.h): each edge, since a plain cast of the wrong value is undefined.
#include "common/float_cast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "core/float_range.h"
#include "runtimes/tree/number_cast.h"

namespace forklift {
namespace {

constexpr float kFltMax = std::numeric_limits<float>::max();
constexpr float kInf = std::numeric_limits<float>::infinity();

// The double's exact decimal text (glibc prints every digit asked for, and 60 after the point
// cover each double here): the shortest text that reads back as the double is not enough for
// strtof, which rounds the decimal itself, and at the midpoint that decides.
std::string exact(double d) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.60e", d);
  return buf;
}

TEST(FloatCast, RoundsAsStrtofAndSaturatesOnlyWhereStrtofGivesInfinity) {
  const double just_below_overflow = std::nextafter(kFloatOverflow, 0.0);
  const struct {
    double in;
    float out;
  } cases[] = {
      {0.0, 0.0f},
      {1.5, 1.5f},
      {0.1, 0.1f},
      {1e-320, 0.0f},  // a double denormal: below float's, rounds to 0
      {static_cast<double>(kFltMax), kFltMax},
      {3.4028235e38, kFltMax},  // FLT_MAX's shortest text, a little above it as a double
      {just_below_overflow, kFltMax},
      {kFloatOverflow, kInf},  // halfway to 2^128 rounds to even: infinity
      {1e39, kInf},
      {1e300, kInf},
      {std::numeric_limits<double>::infinity(), kInf},
      {-3.4028235e38, -kFltMax},
      {-kFloatOverflow, -kInf},
      {-1e300, -kInf},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(to_float_saturating(c.in), c.out) << c.in;
    EXPECT_EQ(to_float_saturating(c.in), std::strtof(exact(c.in).c_str(), nullptr)) << c.in;
    // A client's float is refused exactly where it would become infinity.
    EXPECT_EQ(beyond_float_range(c.in), std::isinf(c.out)) << c.in;
  }
  EXPECT_TRUE(std::isnan(to_float_saturating(std::nan(""))));
  EXPECT_FALSE(beyond_float_range(std::nan("")));  // missing, not out of range
  EXPECT_TRUE(std::signbit(to_float_saturating(-0.0)));
}

TEST(TreeNumberCast, AnIndexOrCountIsWholeAndWithinItsType) {
  using tree::checked_number_as;
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(checked_number_as<std::int32_t>(2147483647.0), 2147483647);
  EXPECT_EQ(checked_number_as<std::int32_t>(-2147483648.0),
            std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ(checked_number_as<std::int32_t>(-0.0), 0);
  for (double refused : {2147483648.0, -2147483649.0, 1.5, -0.5, 5e-324, nan, inf, -inf}) {
    EXPECT_FALSE(checked_number_as<std::int32_t>(refused)) << refused;
  }
  // 2^63 - 1 is not a double: the largest below 2^63 is 2^63 - 1024.
  EXPECT_EQ(checked_number_as<std::int64_t>(0x1p63 - 1024), std::int64_t{0x7ffffffffffffc00});
  EXPECT_FALSE(checked_number_as<std::int64_t>(0x1p63));
  EXPECT_EQ(checked_number_as<std::int64_t>(-0x1p63), std::numeric_limits<std::int64_t>::min());
  EXPECT_FALSE(checked_number_as<std::size_t>(-1.0));
  EXPECT_FALSE(checked_number_as<std::size_t>(0x1p64));
  EXPECT_EQ(checked_number_as<std::size_t>(0x1p64 - 2048), std::size_t{0xfffffffffffff800});
  EXPECT_EQ(checked_number_as<std::uint32_t>(4294967295.0), 4294967295u);
  EXPECT_FALSE(checked_number_as<std::uint32_t>(4294967296.0));
  // Floats are never refused: NaN and the infinities are what the formats write for them.
  EXPECT_TRUE(std::isnan(*checked_number_as<float>(nan)));
  EXPECT_EQ(*checked_number_as<float>(1e300), kInf);
}

}  // namespace
}  // namespace forklift
