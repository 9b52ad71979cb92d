// Tests for the canonical formatter: idempotence (fmt(parse(fmt(x))) == fmt(x)) on the shipped specs
// and on messy inputs, comment and blank-line preservation, and that formatting never changes meaning.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "bna/spec.hpp"

namespace bna::spec {
namespace {

std::string fmt(const std::string& src) {
  auto d = parse_document(src, "f.wf");
  EXPECT_TRUE(d) << d.status().to_string();
  return d ? format(*d) : std::string();
}

std::string read(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void expect_round_trip(const std::string& src, const char* name) {
  const std::string once = fmt(src);
  const std::string twice = fmt(once);
  EXPECT_EQ(once, twice) << name << "\n--- once ---\n" << once << "--- twice ---\n" << twice;
  // Same meaning before and after.
  auto a = parse_spec(src, "a");
  auto b = parse_spec(once, "a");
  ASSERT_EQ(a.has_value(), b.has_value()) << name;
  if (a) {
    EXPECT_EQ(ir_json(*a), ir_json(*b)) << name;
  }
}

TEST(SpecFormat, ShippedSpecsAreCanonical) {
  for (const char* f : {"default.wf", "long_context.wf"}) {
    const std::string src = read(std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/" + f);
    ASSERT_FALSE(src.empty()) << f;
    EXPECT_EQ(fmt(src), src) << f << " is not in canonical layout (bna spec fmt --write)";
  }
}

TEST(SpecFormat, FlattensShortListsAndBreaksLongOnes) {
  const std::string src = "(butterfly (backbone\n   (cycle   :type random\n :seed 42)) (local (window :size 8)))";
  EXPECT_EQ(fmt(src),
            "(butterfly\n"
            "  (backbone (cycle :type random :seed 42))\n"
            "  (local (window :size 8)))\n");
  const std::string long_src =
      "(butterfly (bias (edge_logit_bias :cycle (schedule :linear 0.0 0.4 :steps 2000) :window (schedule :linear 0.0 "
      "-0.1 :steps 2000) :landmark 0.1)))";
  EXPECT_EQ(fmt(long_src),
            "(butterfly\n"
            "  (bias\n"
            "    (edge_logit_bias\n"
            "      :cycle (schedule :linear 0.0 0.4 :steps 2000)\n"
            "      :window (schedule :linear 0.0 -0.1 :steps 2000)\n"
            "      :landmark 0.1)))\n");
}

TEST(SpecFormat, KeepsCommentsAndBlankLines) {
  const std::string src =
      ";; header\n\n\n(butterfly ; root note\n  (degree 4)   ; why four\n\n\n  ; next section\n"
      "  (local (window ; inner\n :size 8)))  ; tail\n";
  const std::string out = fmt(src);
  EXPECT_EQ(out,
            ";; header\n"
            "\n"
            "(butterfly ; root note\n"
            "  (degree 4) ; why four\n"
            "\n"
            "  ; next section\n"
            "  (local\n"
            "    (window ; inner\n"
            "      :size 8))) ; tail\n");
}

TEST(SpecFormat, CommentBeforeCloseParenGetsItsOwnLine) {
  const std::string out = fmt("(butterfly (degree 4) ; last\n)");
  EXPECT_EQ(out, "(butterfly\n  (degree 4) ; last\n)\n");
  expect_round_trip(out, "close");
}

TEST(SpecFormat, StringsAreReEscaped) {
  const std::string out = fmt("(butterfly (backbone (cycle :routing \"a\\x22b\\\\c\\n\")))");
  EXPECT_NE(out.find("\"a\\\"b\\\\c\\n\""), std::string::npos) << out;
  expect_round_trip(out, "strings");
}

TEST(SpecFormat, RoundTripOnAssortedInputs) {
  const char* inputs[] = {
      "(butterfly)",
      "(wayfinder (degree 64))",
      "(butterfly ((a b) (c ; x\n d)))",
      "(butterfly (x :k\n ; lonely comment\n ))",
      "(butterfly (x :a :b :c 1 :d))",
      "(butterfly (x :k ; between key and value\n 5))",
      "; only\n; comments\n(butterfly\n\n\n ; a\n\n ; b\n)\n; end\n; end2",
      "(butterfly (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
      "(bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb :k (c d e f g h i j k l m n o p q r s t u v w x y z))))",
      "(butterfly (backbone (cycle :type random :seed 42 :k 2)) (local (window :size (schedule :linear 64 16 "
      ":steps 2000))) (highways (landmarks :stride 64)) (permute_window :enabled true :window 32))",
  };
  for (const char* in : inputs) expect_round_trip(in, in);
}

}  // namespace
}  // namespace bna::spec
