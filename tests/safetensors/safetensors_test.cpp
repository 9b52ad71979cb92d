// safetensors tests: round trip of every dtype (shapes, bytes, metadata, file order), read_f32
// conversions, sharded directories, and every header error: truncated length/header, bad JSON, wrong
// field types, unknown dtype, offsets out of range / overlapping / leaving holes, and dtype-shape-bytes
// mismatches. Every error must come back as a Status, never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "bna/dtype.hpp"
#include "bna/io.hpp"
#include "bna/safetensors.hpp"

namespace bna::st {
namespace {

std::string temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("bna_st_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

// A raw file: 8-byte length + header + data.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s + header + data;
}

Expected<File> parse_str(const std::string& s) {
  return File::parse(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

void expect_corrupt(const std::string& s, const std::string& needle) {
  auto f = parse_str(s);
  ASSERT_FALSE(f.has_value()) << "accepted: " << needle;
  EXPECT_NE(f.status().message().find(needle), std::string::npos)
      << "message '" << f.status().message() << "' lacks '" << needle << "'";
}

TEST(Safetensors, DtypeNamesAndSizes) {
  EXPECT_STREQ(dtype_name(Dtype::kBF16), "BF16");
  EXPECT_STREQ(dtype_name(Dtype::kBool), "BOOL");
  EXPECT_EQ(dtype_size(Dtype::kF64), 8u);
  EXPECT_EQ(dtype_size(Dtype::kI16), 2u);
  for (Dtype t : {Dtype::kF32, Dtype::kF16, Dtype::kBF16, Dtype::kF64, Dtype::kI64, Dtype::kI32, Dtype::kI16,
                  Dtype::kI8, Dtype::kU8, Dtype::kBool}) {
    auto p = parse_dtype(dtype_name(t));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, t);
  }
  EXPECT_FALSE(parse_dtype("F8_E4M3").has_value());
}

TEST(Safetensors, RoundTripAllDtypes) {
  const std::string path = temp_dir() + "/rt.safetensors";
  std::vector<float> a(2 * 3 * 5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i) - 3.0f;
  std::vector<uint16_t> hb(7), hh(7);
  for (int i = 0; i < 7; ++i) { hb[i] = float_to_bf16(a[i]); hh[i] = float_to_f16(a[i]); }
  std::vector<double> d = {1.5, -2.25, 3.0};
  std::vector<int64_t> i64 = {-1, 1LL << 40};
  std::vector<int32_t> i32 = {7, -9, 11};
  std::vector<int16_t> i16 = {-3};
  std::vector<int8_t> i8 = {-128, 127};
  std::vector<uint8_t> u8 = {1, 2, 3, 4, 5};
  std::vector<uint8_t> bo = {1, 0, 1};
  std::vector<WriteTensor> ws = {
      {"z.weight", Dtype::kF32, {2, 3, 5}, a.data()}, {"bf", Dtype::kBF16, {7}, hb.data()},
      {"hf", Dtype::kF16, {1, 7}, hh.data()},         {"d", Dtype::kF64, {3}, d.data()},
      {"i64", Dtype::kI64, {2}, i64.data()},          {"i32", Dtype::kI32, {3}, i32.data()},
      {"i16", Dtype::kI16, {}, i16.data()},           {"i8", Dtype::kI8, {2}, i8.data()},
      {"u8", Dtype::kU8, {5}, u8.data()},             {"b", Dtype::kBool, {3}, bo.data()},
      {"empty", Dtype::kF32, {0, 4}, nullptr}};
  ASSERT_TRUE(write(path, ws, {{"format", "pt"}, {"note", "x"}}).is_ok());
  auto f = File::open(path);
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  ASSERT_EQ(f->tensors().size(), ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    const TensorInfo& t = f->tensors()[i];  // file order = write order
    EXPECT_EQ(t.name, ws[i].name);
    EXPECT_EQ(t.dtype, ws[i].dtype);
    EXPECT_EQ(t.shape, ws[i].shape);
    ASSERT_EQ(t.nbytes, static_cast<size_t>(t.numel()) * dtype_size(t.dtype));
    if (t.nbytes) {
      EXPECT_EQ(std::memcmp(t.data, ws[i].data, t.nbytes), 0) << t.name;
    }
  }
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->find("nope"), nullptr);
  const TensorInfo* z = f->find("z.weight");
  ASSERT_NE(z, nullptr);
  std::vector<float> back(a.size());
  ASSERT_TRUE(read_f32(*z, back.data()).is_ok());
  EXPECT_EQ(back, a);
  std::vector<float> b7(7);
  ASSERT_TRUE(read_f32(*f->find("bf"), b7.data()).is_ok());
  for (int i = 0; i < 7; ++i) EXPECT_EQ(b7[i], bf16_to_float(hb[i]));
  ASSERT_TRUE(read_f32(*f->find("hf"), b7.data()).is_ok());
  for (int i = 0; i < 7; ++i) EXPECT_EQ(b7[i], f16_to_float(hh[i]));
  Status s = read_f32(*f->find("i32"), b7.data());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("'i32'"), std::string::npos);
  EXPECT_NE(s.message().find("I32"), std::string::npos);
  // Moving keeps the data pointers valid.
  File g = std::move(*f);
  EXPECT_EQ(std::memcmp(g.find("u8")->data, u8.data(), 5), 0);
  // The header is padded so data starts 8-aligned.
  auto bytes = io::read_file(path);
  uint64_t hl = 0;
  std::memcpy(&hl, bytes->data(), 8);
  EXPECT_EQ(hl % 8, 0u);
}

TEST(Safetensors, WriteRejectsBadInput) {
  const std::string path = temp_dir() + "/bad.safetensors";
  float x = 1;
  EXPECT_FALSE(write(path, {{"", Dtype::kF32, {1}, &x}}).is_ok());
  EXPECT_FALSE(write(path, {{"__metadata__", Dtype::kF32, {1}, &x}}).is_ok());
  EXPECT_FALSE(write(path, {{"a", Dtype::kF32, {1}, &x}, {"a", Dtype::kF32, {1}, &x}}).is_ok());
  EXPECT_FALSE(write(path, {{"a", Dtype::kF32, {-1}, &x}}).is_ok());
  EXPECT_FALSE(write(path, {{"a", Dtype::kF32, {1}, nullptr}}).is_ok());
  EXPECT_FALSE(write(path, {{"a", Dtype::kF32, {INT64_MAX, 4}, &x}}).is_ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(write(temp_dir() + "/no/such/dir/x.safetensors", {{"a", Dtype::kF32, {1}, &x}}).is_ok());
}

TEST(Safetensors, EveryTruncationIsAnError) {
  const std::string path = temp_dir() + "/tr.safetensors";
  std::vector<float> a = {1, 2, 3};
  ASSERT_TRUE(write(path, {{"a", Dtype::kF32, {3}, a.data()}, {"b", Dtype::kF32, {0}, nullptr}}, {{"k", "v"}}).is_ok());
  std::string s = *io::read_file(path);
  ASSERT_TRUE(parse_str(s).has_value());
  for (size_t n = 0; n < s.size(); ++n) EXPECT_FALSE(parse_str(s.substr(0, n)).has_value()) << "length " << n;
  expect_corrupt(s.substr(0, 5), "at least 8");
  expect_corrupt(s.substr(0, 20), "truncated header");
}

TEST(Safetensors, HeaderErrors) {
  const std::string f12(12, 'x');
  expect_corrupt(raw_file("{\"a\":", ""), "not a valid JSON");
  expect_corrupt(raw_file("[1,2]", ""), "does not start with '{'");
  expect_corrupt(raw_file("{\"a\": 1}", ""), "not an object");
  expect_corrupt(raw_file(R"({"a":{"shape":[3],"data_offsets":[0,12]}})", f12), "'dtype'");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,12]}})", f12), "'shape'");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[3]}})", f12), "data_offsets");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0]}})", f12), "data_offsets");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}})", f12), "shape entry");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,12]}})", f12), "shape entry");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,-12]}})", f12), "non-negative");
  expect_corrupt(raw_file(R"({"__metadata__":{"a":1}})", ""), "__metadata__['a']");
  expect_corrupt(raw_file(R"({"__metadata__":[1]})", ""), "__metadata__ is not an object");
  auto u = parse_str(raw_file(R"({"a":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[0,3]}})", "abc"));
  ASSERT_FALSE(u.has_value());
  EXPECT_EQ(u.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(u.status().message().find("F8_E4M3"), std::string::npos);
  // Header length beyond the limit.
  std::string big(8, '\0');
  big[4] = 0x10;  // 2^36
  expect_corrupt(big, "exceeds the limit");
}

TEST(Safetensors, OffsetErrors) {
  const std::string f12(12, 'x');
  // Out of range.
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", f12), "out of range");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[8,4]}})", f12), "begin > end");
  // Overlap.
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", f12), "overlap");
  // Hole and trailing bytes.
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", f12), "hole");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f12), "cover 8");
  // dtype/shape/bytes mismatch.
  expect_corrupt(raw_file(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,12]}})", f12), "needs 6 bytes");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", f12), "needs 16 bytes");
  expect_corrupt(raw_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,12]}})", f12),
                 "overflows");
  // Valid, reordered: file order follows offsets, not the JSON.
  auto ok = parse_str(raw_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                               R"("a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", f12));
  ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  EXPECT_EQ(ok->tensors()[0].name, "a");
  EXPECT_EQ(ok->tensors()[1].name, "b");
}

TEST(Safetensors, MissingFile) {
  auto f = File::open(temp_dir() + "/missing.safetensors");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

TEST(Safetensors, CheckpointSingleAndSharded) {
  namespace fs = std::filesystem;
  const std::string d1 = temp_dir() + "/single";
  fs::create_directories(d1);
  float x[2] = {1, 2}, y[3] = {3, 4, 5};
  ASSERT_TRUE(write(d1 + "/model.safetensors", {{"x", Dtype::kF32, {2}, x}}).is_ok());
  auto c1 = Checkpoint::open_dir(d1);
  ASSERT_TRUE(c1.has_value()) << c1.status().to_string();
  EXPECT_EQ(c1->names(), std::vector<std::string>{"x"});

  const std::string d2 = temp_dir() + "/sharded";
  fs::create_directories(d2);
  ASSERT_TRUE(write(d2 + "/model-00001-of-00002.safetensors", {{"x", Dtype::kF32, {2}, x}}).is_ok());
  ASSERT_TRUE(write(d2 + "/model-00002-of-00002.safetensors", {{"y", Dtype::kF32, {3}, y}}).is_ok());
  const std::string idx = d2 + "/model.safetensors.index.json";
  ASSERT_TRUE(io::write_file_atomic(idx, R"({"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors",)"
                                         R"("y":"model-00002-of-00002.safetensors"}})").is_ok());
  auto c2 = Checkpoint::open_dir(d2);
  ASSERT_TRUE(c2.has_value()) << c2.status().to_string();
  EXPECT_EQ(c2->num_files(), 2u);
  ASSERT_NE(c2->find("y"), nullptr);
  float back[3];
  ASSERT_TRUE(read_f32(*c2->find("y"), back).is_ok());
  EXPECT_EQ(back[2], 5.0f);
  EXPECT_EQ(c2->find("z"), nullptr);

  // Missing shard: not_found naming it.
  ASSERT_TRUE(io::write_file_atomic(idx, R"({"weight_map":{"x":"model-00001-of-00002.safetensors",)"
                                         R"("y":"model-00003-of-00003.safetensors"}})").is_ok());
  auto c3 = Checkpoint::open_dir(d2);
  ASSERT_FALSE(c3.has_value());
  EXPECT_EQ(c3.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c3.status().message().find("model-00003-of-00003"), std::string::npos);
  // A tensor the index puts in the wrong shard.
  ASSERT_TRUE(io::write_file_atomic(idx, R"({"weight_map":{"x":"model-00002-of-00002.safetensors"}})").is_ok());
  EXPECT_FALSE(Checkpoint::open_dir(d2).has_value());
  // Path traversal and bad JSON.
  ASSERT_TRUE(io::write_file_atomic(idx, R"({"weight_map":{"x":"../single/model.safetensors"}})").is_ok());
  EXPECT_FALSE(Checkpoint::open_dir(d2).has_value());
  ASSERT_TRUE(io::write_file_atomic(idx, R"({"weight_map":)").is_ok());
  EXPECT_FALSE(Checkpoint::open_dir(d2).has_value());
  // Empty dir.
  const std::string d3 = temp_dir() + "/empty";
  fs::create_directories(d3);
  auto c4 = Checkpoint::open_dir(d3);
  ASSERT_FALSE(c4.has_value());
  EXPECT_EQ(c4.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace bna::st
