#include "core/interval.hpp"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace orch {
namespace {

using std::chrono::milliseconds;

std::string error_of(const std::string &text) {
  try {
    parse_interval(text);
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "no error";
}

std::int64_t ms(const std::string &text) { return parse_interval(text).count(); }

TEST(ParseInterval, ExamplesFromTaskSpecs) {
  EXPECT_EQ(ms("10 minutes"), 600000);
  EXPECT_EQ(ms("5 seconds"), 5000);
  EXPECT_EQ(ms("1 hour 30 minutes"), 5400000);
  EXPECT_EQ(ms("500 ms"), 500);
  EXPECT_EQ(ms("2s"), 2000);
  EXPECT_EQ(ms("1h"), 3600000);
  EXPECT_EQ(ms("1.5 seconds"), 1500);
  EXPECT_EQ(ms("00:10:00"), 600000);
}

TEST(ParseInterval, EveryUnitSpelling) {
  for (const char *u : {"ms", "msec", "msecs", "millisecond", "milliseconds"}) EXPECT_EQ(ms(std::string("3 ") + u), 3) << u;
  for (const char *u : {"s", "sec", "secs", "second", "seconds"}) EXPECT_EQ(ms(std::string("3 ") + u), 3000) << u;
  for (const char *u : {"m", "min", "mins", "minute", "minutes"}) EXPECT_EQ(ms(std::string("3 ") + u), 180000) << u;
  for (const char *u : {"h", "hr", "hrs", "hour", "hours"}) EXPECT_EQ(ms(std::string("3 ") + u), 10800000) << u;
  for (const char *u : {"d", "day", "days"}) EXPECT_EQ(ms(std::string("3 ") + u), 259200000) << u;
  for (const char *u : {"w", "week", "weeks"}) EXPECT_EQ(ms(std::string("3 ") + u), 1814400000) << u;
}

TEST(ParseInterval, CaseAndSpacing) {
  EXPECT_EQ(ms("7 SECONDS"), 7000);
  EXPECT_EQ(ms("3 Min"), 180000);
  EXPECT_EQ(ms("2MS"), 2);
  EXPECT_EQ(ms("  7s  "), 7000);
  EXPECT_EQ(ms("1h30m"), 5400000);
  EXPECT_EQ(ms("1h 30m 15s 250ms"), 5415250);
  EXPECT_EQ(ms("\t1\nhour "), 3600000);
  EXPECT_EQ(ms("1 minute 1 minute"), 120000);  // terms add up
}

TEST(ParseInterval, BareNumberIsSeconds) {
  EXPECT_EQ(ms("42"), 42000);
  EXPECT_EQ(ms("0.25"), 250);
  EXPECT_EQ(ms(" 0 "), 0);
  EXPECT_EQ(ms("007"), 7000);
}

TEST(ParseInterval, Fractions) {
  EXPECT_EQ(ms(".5s"), 500);
  EXPECT_EQ(ms("0.5 minutes"), 30000);
  EXPECT_EQ(ms("1.25 h"), 4500000);
  EXPECT_EQ(ms("0.0004s"), 0);  // rounded to the nearest millisecond
  EXPECT_EQ(ms("0.0005s"), 1);
  EXPECT_EQ(ms("1.5 ms"), 2);
  EXPECT_EQ(ms("1.9999999999 s"), 2000);
  EXPECT_EQ(ms("0.1 weeks"), 60480000);
}

TEST(ParseInterval, ClockForm) {
  EXPECT_EQ(ms("01:30"), 5400000);  // HH:MM, as PostgreSQL reads it
  EXPECT_EQ(ms("1:30"), 5400000);
  EXPECT_EQ(ms("00:00:01.25"), 1250);
  EXPECT_EQ(ms("00:00:00.001"), 1);
  EXPECT_EQ(ms("100:00:00"), 360000000);
  EXPECT_EQ(ms("1 day 02:00:00"), 93600000);
  EXPECT_EQ(ms("23:59:59"), 86399000);
}

TEST(ParseInterval, GarbageIsRejectedWithTheInputQuoted) {
  EXPECT_EQ(error_of("abc"), "invalid interval \"abc\"");
  EXPECT_EQ(error_of(""), "invalid interval \"\"");
  EXPECT_EQ(error_of("   "), "invalid interval \"   \"");
  EXPECT_EQ(error_of("5 parsecs"), "invalid interval \"5 parsecs\"");
  EXPECT_EQ(error_of("1 hour 30"), "invalid interval \"1 hour 30\"");  // ambiguous
  for (const char *bad : {"s", "+5s", "5.", "1..5s", "1,5 s", "1 hour, 30 minutes", "5 s ago", "1e3 s", "NaN", "inf",
                          "1 year", "2 months", "10:5", "10:60", "1:00:60", "1.5:00", "1:00:00:00", ":30", "1:",
                          "00:10:00s", "1 h m", "5 seconds.", "0x10 s", "1\xc2\xa0s"}) {
    EXPECT_EQ(error_of(bad), "invalid interval " + std::string("\"") + bad + "\"") << bad;
  }
}

TEST(ParseInterval, NegativeIsRejected) {
  EXPECT_EQ(error_of("-5 seconds"), "invalid interval \"-5 seconds\": must not be negative");
  EXPECT_EQ(error_of("1 hour -5 minutes"), "invalid interval \"1 hour -5 minutes\": must not be negative");
  EXPECT_EQ(error_of("-00:01:00"), "invalid interval \"-00:01:00\": must not be negative");
}

TEST(ParseInterval, OverflowIsRejected) {
  EXPECT_EQ(ms("36525 days"), kMaxInterval.count());
  EXPECT_EQ(error_of("36525 days 1 ms"), "invalid interval \"36525 days 1 ms\": out of range (at most 100 years)");
  EXPECT_EQ(error_of("36526 days"), "invalid interval \"36526 days\": out of range (at most 100 years)");
  EXPECT_EQ(error_of("99999999999999999999999 s"),
            "invalid interval \"99999999999999999999999 s\": out of range (at most 100 years)");
  EXPECT_EQ(error_of("9223372036854775807 ms"),
            "invalid interval \"9223372036854775807 ms\": out of range (at most 100 years)");
  EXPECT_EQ(error_of("5000000000000 weeks"),
            "invalid interval \"5000000000000 weeks\": out of range (at most 100 years)");
  EXPECT_EQ(error_of("900000:00:00"), "invalid interval \"900000:00:00\": out of range (at most 100 years)");
}

TEST(ParseInterval, MessageShowsControlBytesAndIsBounded) {
  EXPECT_EQ(error_of(std::string("1s\0", 3)), "invalid interval \"1s\\u0000\"");
  EXPECT_EQ(error_of("1s\n\"x"), "invalid interval \"1s\\n\\\"x\"");
  std::string longer(300, 'x');
  EXPECT_EQ(error_of(longer), "invalid interval \"" + std::string(100, 'x') + "...\"");
}

TEST(FormatInterval, ExactOutputs) {
  EXPECT_EQ(format_interval(milliseconds(0)), "0s");
  EXPECT_EQ(format_interval(milliseconds(1)), "1ms");
  EXPECT_EQ(format_interval(milliseconds(250)), "250ms");
  EXPECT_EQ(format_interval(milliseconds(999)), "999ms");
  EXPECT_EQ(format_interval(milliseconds(1000)), "1s");
  EXPECT_EQ(format_interval(milliseconds(2000)), "2s");
  EXPECT_EQ(format_interval(milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_interval(milliseconds(1005)), "1.005s");
  EXPECT_EQ(format_interval(milliseconds(1050)), "1.05s");
  EXPECT_EQ(format_interval(milliseconds(60000)), "1m");
  EXPECT_EQ(format_interval(milliseconds(90000)), "1m30s");
  EXPECT_EQ(format_interval(milliseconds(60250)), "1m0.25s");
  EXPECT_EQ(format_interval(milliseconds(3600000)), "1h");
  EXPECT_EQ(format_interval(milliseconds(5400000)), "1h30m");
  EXPECT_EQ(format_interval(milliseconds(86400000)), "1d");
  EXPECT_EQ(format_interval(milliseconds(93784005)), "1d2h3m4.005s");
  EXPECT_EQ(format_interval(milliseconds(-2000)), "-2s");
  EXPECT_EQ(format_interval(milliseconds(INT64_MIN)), "-106751991167d7h12m55.808s");
}

TEST(FormatInterval, RoundTripsThroughParse) {
  std::uint64_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    std::int64_t v = static_cast<std::int64_t>((state >> 11) % static_cast<std::uint64_t>(kMaxInterval.count() + 1));
    if (i % 4 == 0) v %= 100000;  // plenty of small values too
    ASSERT_EQ(ms(format_interval(milliseconds(v))), v) << format_interval(milliseconds(v));
  }
  EXPECT_EQ(ms(format_interval(kMaxInterval)), kMaxInterval.count());
}

}  // namespace
}  // namespace orch
