// NFC normalization (src/tokenizer/unicode.hpp): hard cases with outputs from Python's
// unicodedata.normalize("NFC", ...) pasted as code point literals (these cases are the same in
// Unicode 14 and 15), properties on random strings (idempotence, the UTF-8 path equal to the code
// point path, invalid bytes passed through), and the tokenizer-level effect: an NFC tokenizer gives
// a combining sequence the ids of its precomposed form.
#include <gtest/gtest.h>

#include <random>

#include "bna/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

namespace bna::tok {
namespace {

using Cps = std::vector<uint32_t>;

std::string utf8(const Cps& cps) {
  std::string s;
  for (uint32_t c : cps) utf8_append(s, c);
  return s;
}

std::string hex(const Cps& cps) {
  std::string s;
  char buf[16];
  for (uint32_t c : cps) {
    std::snprintf(buf, sizeof buf, "%sU+%04X", s.empty() ? "" : " ", c);
    s += buf;
  }
  return "[" + s + "]";
}

struct NfcCase {
  const char* name;
  Cps in, want;
};

// Expected outputs: Python 3.11 unicodedata (Unicode 14.0.0) normalize("NFC", ...).
const NfcCase kCases[] = {
    {"empty", {}, {}},
    {"ascii", {0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x2C, 0x20, 0x77, 0x6F, 0x72, 0x6C, 0x64, 0x21, 0x20, 0x31, 0x32, 0x33},
     {0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x2C, 0x20, 0x77, 0x6F, 0x72, 0x6C, 0x64, 0x21, 0x20, 0x31, 0x32, 0x33}},
    {"e_acute", {0x65, 0x301}, {0xE9}},
    {"A_ring", {0x41, 0x30A}, {0xC5}},
    {"angstrom_singleton", {0x212B}, {0xC5}},
    {"ohm_singleton", {0x2126}, {0x3A9}},
    {"kelvin_singleton", {0x212A}, {0x4B}},
    {"cjk_compat_singleton", {0xF900}, {0x8C48}},
    {"greek_ano_teleia_singleton", {0x387}, {0xB7}},
    {"nonstarter_decomposition", {0x344}, {0x308, 0x301}},
    {"nonstarter_decomposition_composes", {0x3B9, 0x344}, {0x390}},
    {"hangul_L_V", {0x1100, 0x1161}, {0xAC00}},
    {"hangul_LV_T", {0xAC00, 0x11A8}, {0xAC01}},
    {"hangul_L_V_T", {0x1100, 0x1161, 0x11A8}, {0xAC01}},
    {"hangul_LVT_stays", {0xAC01}, {0xAC01}},
    {"hangul_LVT_then_T", {0xAC01, 0x11A8}, {0xAC01, 0x11A8}},
    {"reorder", {0x71, 0x307, 0x323}, {0x71, 0x323, 0x307}},
    {"dot_above_then_dot_below", {0x1E0B, 0x323}, {0x1E0D, 0x307}},
    {"d_dot_above_dot_below", {0x64, 0x307, 0x323}, {0x1E0D, 0x307}},
    {"blocked_same_class", {0x61, 0x301, 0x301}, {0xE1, 0x301}},
    {"blocked_same_class_overline", {0x61, 0x305, 0x301}, {0x61, 0x305, 0x301}},
    {"lower_class_not_blocking", {0x61, 0x323, 0x302}, {0x1EAD}},
    {"blocked_by_starter", {0x61, 0x62, 0x301}, {0x61, 0x62, 0x301}},
    {"blocked_by_cgj", {0x61, 0x34F, 0x301}, {0x61, 0x34F, 0x301}},
    {"exclusion_devanagari", {0x958}, {0x915, 0x93C}},
    {"exclusion_pair_stays", {0x915, 0x93C}, {0x915, 0x93C}},
    {"exclusion_post_composition", {0x2ADC}, {0x2ADD, 0x338}},
    {"exclusion_musical_symbol", {0x1D15E}, {0x1D157, 0x1D165}},
    {"two_starters_compose", {0xB47, 0xB3E}, {0xB4B}},
    {"recursive_composition", {0x65, 0x302, 0x301}, {0x1EBF}},
    {"second_mark_blocked", {0x65, 0x301, 0x302}, {0xE9, 0x302}},
    {"precomposed_stays", {0x1EBF}, {0x1EBF}},
    {"already_nfc", {0xE9, 0xC5, 0x1E0D, 0x307}, {0xE9, 0xC5, 0x1E0D, 0x307}},
    {"hebrew_marks", {0x5D1, 0x5BC, 0x5B8}, {0x5D1, 0x5B8, 0x5BC}},
    {"leading_nonstarter", {0x301, 0x65}, {0x301, 0x65}},
    {"leading_marks_reorder", {0x301, 0x323}, {0x323, 0x301}},
    {"long_mark_run", {0x61, 0x301, 0x316, 0x302, 0x317, 0x303}, {0xE1, 0x316, 0x317, 0x302, 0x303}},
    {"emoji_zwj", {0x1F468, 0x200D, 0x1F469, 0x200D, 0x1F467}, {0x1F468, 0x200D, 0x1F469, 0x200D, 0x1F467}},
    {"emoji_modifier_vs16", {0x1F44D, 0x1F3FD, 0x2764, 0xFE0F}, {0x1F44D, 0x1F3FD, 0x2764, 0xFE0F}},
};

TEST(Nfc, HardCases) {
  for (const NfcCase& c : kCases) {
    EXPECT_EQ(uni::nfc(c.in), c.want) << c.name << ": " << hex(c.in) << " gave " << hex(uni::nfc(c.in))
                                      << ", want " << hex(c.want);
    EXPECT_EQ(uni::nfc_utf8(utf8(c.in)), utf8(c.want)) << c.name << " (UTF-8)";
    // Text NFC leaves as it is must pass the quick check only when it has no unsafe code point.
    if (uni::is_nfc_safe(utf8(c.in))) {
      EXPECT_EQ(c.in, c.want) << c.name << ": quick check said safe";
    }
  }
}

TEST(Nfc, Tables) {
  EXPECT_STREQ(uni::unicode_version(), "15.0.0");
  EXPECT_EQ(uni::combining_class('a'), 0);
  EXPECT_EQ(uni::combining_class(0x301), 230);
  EXPECT_EQ(uni::combining_class(0x323), 220);
  EXPECT_EQ(uni::combining_class(0x345), 240);
  EXPECT_EQ(uni::combining_class(0x334), 1);
  EXPECT_EQ(uni::combining_class(0x10FFFF), 0);
  EXPECT_TRUE(uni::is_nfc_unsafe(0x301));
  EXPECT_TRUE(uni::is_nfc_unsafe(0x212B));
  EXPECT_TRUE(uni::is_nfc_unsafe(0x1161));
  EXPECT_FALSE(uni::is_nfc_unsafe(0xE9));
  EXPECT_FALSE(uni::is_nfc_unsafe(0x1F600));
}

TEST(Nfc, InvalidUtf8PassesThrough) {
  EXPECT_EQ(uni::nfc_utf8(""), "");
  // A lone continuation byte, a truncated sequence, a surrogate, 0xFF: copied as they are; they
  // are starters that compose with nothing, and marks after them still reorder.
  EXPECT_EQ(uni::nfc_utf8("e\x80\xCC\x81"), "e\x80\xCC\x81");
  EXPECT_EQ(uni::nfc_utf8("e\xCC\x81\xFF"), "\xC3\xA9\xFF");
  EXPECT_EQ(uni::nfc_utf8("\xE2\x82" "e\xCC\x81"), "\xE2\x82\xC3\xA9");
  EXPECT_EQ(uni::nfc_utf8("\xED\xA0\x80\xCC\x87\xCC\xA3"), "\xED\xA0\x80\xCC\xA3\xCC\x87");
  EXPECT_TRUE(uni::is_nfc_safe("\xFF\xFE plain \xC3\xA9"));
  EXPECT_FALSE(uni::is_nfc_safe("e\xCC\x81"));
}

// Code points where NFC has something to do: starters that compose, marks of several classes,
// singletons, exclusions, Hangul jamo and syllables, and some that never change.
const uint32_t kPool[] = {0x41,   0x61,   0x64,   0x65,   0x71,   0x20,   0xC5,   0xE9,   0x300,  0x301,
                          0x302,  0x305,  0x307,  0x308,  0x30A,  0x316,  0x323,  0x327,  0x338,  0x344,
                          0x345,  0x34F,  0x387,  0x3B1,  0x3B9,  0x1F00, 0x1F80, 0x5B8,  0x5BC,  0x5D1,
                          0x915,  0x93C,  0x958,  0xB3E,  0xB47,  0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01,
                          0x1E0B, 0x1E0D, 0x1E63, 0x1EBF, 0x212B, 0x2126, 0x2ADC, 0x2ADD, 0xF900, 0x1D157,
                          0x1D165, 0x1D15E, 0x1F600, 0x200D};

TEST(Nfc, IdempotentOnRandomStrings) {
  std::mt19937 rng(20261127);
  std::uniform_int_distribution<size_t> pick(0, std::size(kPool) - 1), len(0, 23);
  for (int trial = 0; trial < 4000; ++trial) {
    Cps s(len(rng));
    for (uint32_t& c : s) c = kPool[pick(rng)];
    const Cps once = uni::nfc(s);
    EXPECT_EQ(uni::nfc(once), once) << "trial " << trial << ": " << hex(s) << " -> " << hex(once);
    EXPECT_EQ(uni::nfc_utf8(utf8(s)), utf8(once)) << "trial " << trial << ": " << hex(s);
    // Canonical ordering is part of the result: marks after a starter are in non-decreasing class.
    for (size_t i = 1; i < once.size(); ++i) {
      const int a = uni::combining_class(once[i - 1]), b = uni::combining_class(once[i]);
      EXPECT_TRUE(b == 0 || a <= b) << "trial " << trial << ": " << hex(once) << " at " << i;
    }
  }
}

TEST(Nfc, RandomBytesDoNotBreak) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 40);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string s(static_cast<size_t>(len(rng)), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    const std::string once = uni::nfc_utf8(s);
    EXPECT_EQ(uni::nfc_utf8(once), once) << "trial " << trial;
    if (uni::is_nfc_safe(s)) {
      EXPECT_EQ(once, s) << "trial " << trial;
    }
  }
}

TEST(Nfc, TokenizerEncodesDecomposedAsPrecomposed) {
  // The Qwen2-style fixture has an NFC normalizer.
  auto tk = load_tokenizer_json(std::string(BNA_FIXTURES_DIR) + "/hf/tokenizers/qwen2.json");
  ASSERT_TRUE(tk.has_value()) << tk.status().to_string();
  const std::pair<std::string, std::string> pairs[] = {
      {"Caf" + utf8({0x65, 0x301}) + ", na" + utf8({0x69, 0x308}) + "ve", "Caf\xC3\xA9, na\xC3\xAFve"},
      {utf8({0x212B}) + "ngstr" + utf8({0x6F, 0x308}) + "m", "\xC3\x85ngstr\xC3\xB6m"},
      {utf8({0x1100, 0x1161, 0x11A8}) + " " + utf8({0x1112, 0x1161, 0x11AB}), utf8({0xAC01, 0x20, 0xD55C})},
      {"<|endoftext|>e" + utf8({0x301}), "<|endoftext|>\xC3\xA9"},
  };
  for (const auto& [decomposed, precomposed] : pairs) {
    auto a = (*tk)->try_encode(decomposed);
    ASSERT_TRUE(a.has_value()) << a.status().to_string();
    EXPECT_EQ(*a, (*tk)->encode(precomposed)) << "'" << decomposed << "'";
    EXPECT_EQ((*tk)->decode(*a), precomposed);
  }
}

}  // namespace
}  // namespace bna::tok
