// Tests for the .wf lexer/parser: token kinds, comments, string escapes, blank-line and trailing
// comment tracking, and errors with file:line:col for many malformed inputs.
#include <gtest/gtest.h>

#include <string>

#include "bna/spec.hpp"

namespace bna::spec {
namespace {

const Node& root_of(const Document& d) { return d.root(); }

TEST(SpecParser, AtomKinds) {
  auto d = parse_document("(butterfly sym :key 42 -7 1_000 3.5 -.5 1e3 \"str\" +2)");
  ASSERT_TRUE(d) << d.status().to_string();
  const auto& it = root_of(*d).items;
  ASSERT_EQ(it.size(), 11u);
  EXPECT_EQ(it[0].kind, NodeKind::kSymbol);
  EXPECT_EQ(it[1].kind, NodeKind::kSymbol);
  EXPECT_EQ(it[2].kind, NodeKind::kKeyword);
  EXPECT_EQ(it[2].text, ":key");
  EXPECT_EQ(it[3].kind, NodeKind::kInt);
  EXPECT_EQ(it[3].int_value, 42);
  EXPECT_EQ(it[4].int_value, -7);
  EXPECT_EQ(it[5].kind, NodeKind::kInt);
  EXPECT_EQ(it[5].int_value, 1000);
  EXPECT_EQ(it[5].text, "1_000");  // kept as written for fmt
  EXPECT_EQ(it[6].kind, NodeKind::kFloat);
  EXPECT_DOUBLE_EQ(it[6].float_value, 3.5);
  EXPECT_DOUBLE_EQ(it[7].float_value, -0.5);
  EXPECT_EQ(it[8].kind, NodeKind::kFloat);
  EXPECT_DOUBLE_EQ(it[8].float_value, 1000.0);
  EXPECT_EQ(it[9].kind, NodeKind::kString);
  EXPECT_EQ(it[9].text, "str");
  EXPECT_EQ(it[10].int_value, 2);
}

TEST(SpecParser, QuotedNumberStaysString) {
  auto d = parse_document("(butterfly \"64\")");
  ASSERT_TRUE(d);
  EXPECT_EQ(root_of(*d).items[1].kind, NodeKind::kString);
  EXPECT_EQ(root_of(*d).items[1].text, "64");
}

TEST(SpecParser, StringEscapes) {
  auto d = parse_document(R"x((butterfly "a\"b\\c\nd\te\rf\x41\0g" "semi;colon (paren)"))x");
  ASSERT_TRUE(d) << d.status().to_string();
  const auto& it = root_of(*d).items;
  EXPECT_EQ(it[1].text, std::string("a\"b\\c\nd\te\rfA\0g", 14));
  EXPECT_EQ(it[2].text, "semi;colon (paren)");
}

TEST(SpecParser, CommentsAreKeptWithTheirRole) {
  const char* src =
      "; file comment\n"
      "(butterfly ; after head\n"
      "\n"
      "  ; leading\n"
      "  (degree 4) ; trailing\n"
      ")\n"
      "; after root\n";
  auto d = parse_document(src);
  ASSERT_TRUE(d) << d.status().to_string();
  ASSERT_EQ(d->top.size(), 3u);
  EXPECT_EQ(d->top[0].kind, NodeKind::kComment);
  EXPECT_EQ(d->top[0].text, " file comment");
  EXPECT_EQ(d->top[2].kind, NodeKind::kComment);
  EXPECT_FALSE(d->top[2].trailing);
  const auto& it = root_of(*d).items;
  ASSERT_EQ(it.size(), 5u);
  EXPECT_TRUE(it[1].trailing);
  EXPECT_EQ(it[1].text, " after head");
  EXPECT_FALSE(it[2].trailing);
  EXPECT_TRUE(it[2].blank_before);
  EXPECT_EQ(it[3].kind, NodeKind::kList);
  EXPECT_TRUE(it[4].trailing);
}

TEST(SpecParser, CommentSwallowsParensAndQuotes) {
  auto d = parse_document("(butterfly ; (not a list) \"not a string\n (degree 3))");
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ(root_of(*d).items.size(), 3u);
}

TEST(SpecParser, LocationsAreOneBased) {
  auto d = parse_document("(butterfly\n  (degree  7))");
  ASSERT_TRUE(d);
  const Node& sec = root_of(*d).items[1];
  EXPECT_EQ(sec.loc.line, 2);
  EXPECT_EQ(sec.loc.col, 3);
  EXPECT_EQ(sec.items[1].loc.line, 2);
  EXPECT_EQ(sec.items[1].loc.col, 12);
}

struct BadInput {
  const char* name;
  const char* text;
  const char* where;  // "line:col"
  const char* what;   // substring of the message
};

class SpecParserErrors : public ::testing::TestWithParam<BadInput> {};

TEST_P(SpecParserErrors, ReportsLineAndColumn) {
  const BadInput& b = GetParam();
  auto d = parse_document(b.text, "spec.wf");
  ASSERT_FALSE(d) << b.name << ": parsed but should fail";
  const std::string msg = d.status().message();
  EXPECT_EQ(msg.rfind(std::string("spec.wf:") + b.where + ": ", 0), 0u) << b.name << ": " << msg;
  EXPECT_NE(msg.find(b.what), std::string::npos) << b.name << ": " << msg;
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, SpecParserErrors,
    ::testing::Values(
        BadInput{"empty", "", "1:1", "empty spec"},
        BadInput{"only_comment", "; nothing\n", "2:1", "empty spec"},
        BadInput{"unclosed", "(butterfly\n  (degree 4)\n", "3:1", "expected ')' to close '(' opened at 1:1"},
        BadInput{"unclosed_inner", "(butterfly (local (window :size 64)", "1:36", "opened at 1:12"},
        BadInput{"stray_close", ")", "1:1", "unexpected ')'"},
        BadInput{"second_form", "(butterfly)\n(butterfly)", "2:1", "single top-level form"},
        BadInput{"top_atom", "butterfly", "1:1", "expected '('"},
        BadInput{"trailing_atom", "(butterfly) junk", "1:13", "expected '('"},
        BadInput{"unterminated_string", "(butterfly\n  \"abc)", "2:3", "unterminated string"},
        BadInput{"bad_escape", "(butterfly \"a\\qb\")", "1:14", "unknown escape '\\q'"},
        BadInput{"bad_hex_escape", "(butterfly \"\\xZ1\")", "1:13", "two hex digits"},
        BadInput{"quote_in_atom", "(butterfly x\"y z\")", "1:13", "inside atom"},
        BadInput{"string_glued", "(butterfly \"a\"b)", "1:15", "after a string"},
        BadInput{"bad_number", "(butterfly\n (degree 12abc))", "2:10", "malformed number '12abc'"},
        BadInput{"bad_exponent", "(butterfly 1e)", "1:12", "malformed number"},
        BadInput{"double_underscore", "(butterfly 1__0)", "1:12", "malformed number"},
        BadInput{"hex_number", "(butterfly 0x10)", "1:12", "malformed number"},
        BadInput{"int_overflow", "(butterfly 99999999999999999999)", "1:12", "64 bits"},
        BadInput{"float_overflow", "(butterfly 1e400)", "1:12", "out of range"},
        BadInput{"lone_colon", "(butterfly : x)", "1:12", "key name"},
        BadInput{"control_char", "(butterfly a\x01)", "1:12", "control character"},
        BadInput{"too_deep", "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
                 "1:65", "nested deeper than 64"}),
    [](const ::testing::TestParamInfo<BadInput>& i) { return std::string(i.param.name); });

TEST(SpecParser, NeverCrashesOnBytePrefixes) {
  const std::string src = "(butterfly (backbone (cycle :type random :seed 42 :k 2)) ; c\n (bias (edge_logit_bias :cycle \"x\\n\")))";
  for (size_t n = 0; n <= src.size(); ++n) {
    auto d = parse_document(std::string_view(src).substr(0, n));
    EXPECT_EQ(d.has_value(), n == src.size()) << "prefix " << n;
  }
}

}  // namespace
}  // namespace bna::spec
