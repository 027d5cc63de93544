#include "filter/core/json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace tcpsteer::json {
namespace {

bool nlohmannAccepts(const std::string& text) {
  return nlohmann::json::accept(text);
}

TEST(Json, ParsesDocument) {
  ParseError error;
  auto value = parse(
      R"( {"a": [1, -2, 3.5e2, true, false, null], "b": {"c": "x\u00e9\ud83d\ude00\n"}} )", &error);
  ASSERT_TRUE(value) << error.message;
  ASSERT_EQ(value->type, Value::Type::kObject);
  const Value* a = value->find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 6u);
  EXPECT_EQ(a->items[0].asInteger(), 1);
  EXPECT_EQ(a->items[1].asInteger(), -2);
  EXPECT_FALSE(a->items[2].asInteger());
  EXPECT_TRUE(a->items[3].boolean);
  EXPECT_EQ(a->items[5].type, Value::Type::kNull);
  EXPECT_EQ(value->find("b")->find("c")->text, "x\xc3\xa9\xf0\x9f\x98\x80\n");
}

// Every escape, and \u escapes at each UTF-8 length boundary, decode to what nlohmann-json decodes.
TEST(Json, StringEscapesDecodeAsNlohmannDoes) {
  for (const char* text : {R"("\"\\\/\b\f\n\r\t")", R"("\u0000\u0001\u007f")", R"("\u0080\u07ff")",
                           R"("\u0800\uffff\ud7ff\ue000")", R"("\ud800\udc00\udbff\udfff")",
                           R"("a\u00e9b\ud83d\ude00c")"}) {
    ParseError error;
    auto value = parse(text, &error);
    ASSERT_TRUE(value) << text << ": " << error.message;
    EXPECT_EQ(value->text, nlohmann::json::parse(text).get<std::string>()) << text;
  }
}

TEST(Json, RejectsWhatRfc8259Rejects) {
  const char* bad[] = {
      "",
      "{",
      "{\"a\" \"b\"}",
      "[1 2]",
      "[1,]",
      "{\"a\":1,}",
      "{,\"a\":1}",
      "{\"a\"}",
      "{1:2}",
      "[01]",
      "[1.]",
      "[.5]",
      "[1e]",
      "[-]",
      "tru",
      "nul",
      "\"\\x\"",
      "\"\\ud800\"",
      "\"\\udc00\"",
      "\"a\nb\"",
      "{} {}",
      "[\"\xff\"]",
      "[\"\xc0\xaf\"]",
      "[\"\xed\xa0\x80\"]",
      "'a'",
      "[+1]",
      "NaN",
      "[1]x",
  };
  for (const char* text : bad) {
    ParseError error;
    EXPECT_FALSE(parse(text, &error)) << text;
    EXPECT_FALSE(error.message.empty()) << text;
    EXPECT_FALSE(nlohmannAccepts(text)) << "test table error: nlohmann accepts " << text;
  }
}

TEST(Json, RejectsDuplicateKeysAndDeepNesting) {
  ParseError error;
  EXPECT_FALSE(parse(R"({"a":1,"a":2})", &error));
  EXPECT_EQ(error.message, "duplicate key");
  std::string deep(kMaxDepth + 1, '[');
  deep += std::string(kMaxDepth + 1, ']');
  EXPECT_FALSE(parse(deep, &error));
  EXPECT_EQ(error.message, "nesting deeper than 32 levels");
  EXPECT_TRUE(error.limit);
  std::string ok_depth(kMaxDepth, '[');
  ok_depth += std::string(kMaxDepth, ']');
  EXPECT_TRUE(parse(ok_depth, &error));
}

TEST(Json, ErrorOffsetPointsAtProblem) {
  ParseError error;
  EXPECT_FALSE(parse("{\"a\": tru}", &error));
  EXPECT_EQ(error.offset, 6u);
}

TEST(Json, AsIntegerRange) {
  EXPECT_EQ(parse("123456789012345678", nullptr)->asInteger(), 123456789012345678);
  EXPECT_FALSE(parse("1234567890123456789", nullptr)->asInteger());
  EXPECT_FALSE(parse("1e3", nullptr)->asInteger());
  EXPECT_EQ(parse("-0", nullptr)->asInteger(), 0);
}

}  // namespace
}  // namespace tcpsteer::json
