#include "core/output_text.hpp"

#include <gtest/gtest.h>

#include <string>

using orch::to_database_text;
using namespace std::string_literals;

TEST(OutputText, KeepsValidUtf8) {
  EXPECT_EQ(to_database_text("plain ascii\n"), "plain ascii\n");
  EXPECT_EQ(to_database_text("gr\xC3\xBC\xC3\x9F \xE2\x82\xAC \xF0\x9F\x98\x80"), "gr\xC3\xBC\xC3\x9F \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(OutputText, ReplacesNulBytes) { EXPECT_EQ(to_database_text("a\0b"s), "a\xEF\xBF\xBD" "b"); }

TEST(OutputText, ReplacesInvalidSequences) {
  EXPECT_EQ(to_database_text("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(to_database_text("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(to_database_text("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(OutputText, ReplacesSequenceCutByTheKeptTail) {
  // The tail of "€x" may start inside the euro sign.
  EXPECT_EQ(to_database_text("\x82\xAC" "x"), "\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(to_database_text("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
}
