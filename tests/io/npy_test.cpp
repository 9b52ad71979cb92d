// .npy writer/reader tests: byte-exact header, round trips for every dtype, v2/v3 acceptance and
// malformed inputs (truncation at every length, bad fields) that must error, never crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "bna/io.hpp"
#include "bna/npy.hpp"

namespace bna::io {
namespace {

std::string temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("bna_io_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

Expected<NpyArray> parse(const std::string& s) {
  return parse_npy(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Npy, HeaderIsByteExact) {
  // numpy.save of int32 [2,3]: 10-byte prefix + 59-byte dict + 58 spaces + '\n' = 128 bytes.
  const std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string want = std::string("\x93NUMPY\x01\x00", 8) + std::string("\x76\x00", 2) + dict +
                     std::string(58, ' ') + "\n";
  EXPECT_EQ(npy_header(NpyType::kI32, {2, 3}), want);
  const std::string h1 = npy_header(NpyType::kU8, {5});
  EXPECT_NE(h1.find("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }"), std::string::npos);
  EXPECT_NE(npy_header(NpyType::kF64, {}).find("'shape': ()"), std::string::npos);
  for (const auto& h : {want, h1, npy_header(NpyType::kF32, {7, 1, 300000000000})}) {
    EXPECT_EQ(h.size() % 64, 0u);
    EXPECT_EQ(h.back(), '\n');
  }
}

TEST(Npy, RoundTripEveryType) {
  const std::string dir = temp_dir();
  const int32_t i32[6] = {1, -2, 3, -4, 5, 2147483647};
  const uint8_t u8[6] = {0, 1, 2, 253, 254, 255};
  const float f32[6] = {0.5f, -1.25f, 3e38f, -0.0f, 1e-30f, 7.f};
  const int64_t i64[6] = {1, -1, INT64_MAX, INT64_MIN, 0, 42};
  const double f64[6] = {0.1, -0.2, 1e300, -1e-300, 0, 3.5};
  struct C { NpyType t; const void* p; };
  for (const C& c : {C{NpyType::kI32, i32}, C{NpyType::kU8, u8}, C{NpyType::kF32, f32}, C{NpyType::kI64, i64},
                     C{NpyType::kF64, f64}}) {
    const std::string path = dir + "/a_" + npy_type_descr(c.t) + ".npy";
    ASSERT_TRUE(write_npy(path, c.t, {2, 3}, c.p).is_ok());
    auto a = read_npy(path);
    ASSERT_TRUE(a) << a.status().to_string();
    EXPECT_EQ(a->type, c.t);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
    ASSERT_EQ(a->bytes.size(), 6 * npy_type_size(c.t));
    EXPECT_EQ(std::memcmp(a->bytes.data(), c.p, a->bytes.size()), 0) << npy_type_descr(c.t);
  }
  // Empty and scalar shapes.
  ASSERT_TRUE(write_npy(dir + "/empty.npy", NpyType::kF32, {0, 4}, nullptr).is_ok());
  auto e = read_npy(dir + "/empty.npy");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->numel(), 0);
  ASSERT_TRUE(write_npy(dir + "/scalar.npy", NpyType::kF64, {}, f64).is_ok());
  auto s = read_npy(dir + "/scalar.npy");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->bytes.size(), 8u);
  std::filesystem::remove_all(dir);
}

TEST(Npy, AcceptsVersion2And3AndOtherSpellings) {
  const std::string dict = "{\"descr\":\"<f8\",\"shape\":(2,),\"fortran_order\":False}";
  for (int v : {2, 3}) {
    std::string f = std::string("\x93NUMPY", 6) + char(v) + '\0';
    const uint32_t hl = static_cast<uint32_t>(dict.size() + 1);
    for (int b = 0; b < 4; ++b) f += char((hl >> (8 * b)) & 0xff);
    f += dict + "\n";
    f.append(16, '\x01');
    auto a = parse(f);
    ASSERT_TRUE(a) << "v" << v << ": " << a.status().to_string();
    EXPECT_EQ(a->type, NpyType::kF64);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));
  }
}

TEST(Npy, RejectsBadFields) {
  auto make = [](const std::string& dict, size_t data_bytes) {
    std::string f = std::string("\x93NUMPY\x01\x00", 8);
    const size_t hl = dict.size() + 1;
    f += char(hl & 0xff);
    f += char(hl >> 8);
    return f + dict + "\n" + std::string(data_bytes, '\0');
  };
  auto err = [&](const std::string& dict, size_t bytes, const std::string& needle) {
    auto a = parse(make(dict, bytes));
    ASSERT_FALSE(a) << dict;
    EXPECT_NE(a.status().message().find(needle), std::string::npos) << a.status().message();
  };
  err("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8, "'<c8'");
  err("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", 4, "big-endian");
  err("{'descr': '<i4', 'fortran_order': True, 'shape': (1,), }", 4, "fortran_order True");
  err("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 4, "data has 4 bytes, expected 8");
  err("{'descr': '<i4', 'fortran_order': False, 'shape': (-1,), }", 4, "'shape'");
  err("{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999), }", 4,
      "overflow");
  err("{'descr': '<i4', 'shape': (1,), }", 4, "missing key");
  err("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, "unexpected key 'x'");
  err("['descr']", 4, "'{'");
  auto v9 = parse(std::string("\x93NUMPY\x09\x00\x00\x00", 10));
  ASSERT_FALSE(v9);
  EXPECT_NE(v9.status().message().find("version 9.0"), std::string::npos);
  auto magic = parse(std::string("\x93NUMPX\x01\x00\x00\x00", 10));
  ASSERT_FALSE(magic);
  EXPECT_NE(magic.status().message().find("magic"), std::string::npos);
}

TEST(Npy, EveryTruncationErrors) {
  const std::string h = npy_header(NpyType::kI32, {3});
  const std::string full = h + std::string(12, '\x05');
  ASSERT_TRUE(parse(full));
  for (size_t n = 0; n < full.size(); ++n) {
    auto a = parse_npy(reinterpret_cast<const uint8_t*>(full.data()), n);
    EXPECT_FALSE(a) << "length " << n;
  }
}

TEST(AtomicFile, WriteReadAndNoTempLeft) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/x.bin";
  ASSERT_TRUE(write_file_atomic(path, "hello").is_ok());
  ASSERT_TRUE(write_file_atomic(path, "replaced").is_ok());
  auto r = read_file(path);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "replaced");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  auto missing = read_file(dir + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(write_file_atomic(dir + "/no/such/dir/f", "x").is_ok());
  std::filesystem::remove_all(dir);
}

TEST(AtomicFile, UncommittedWriterLeavesTargetUntouched) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/y.bin";
  ASSERT_TRUE(write_file_atomic(path, "old").is_ok());
  std::string tmp;
  {
    auto w = AtomicWriter::open(path);
    ASSERT_TRUE(w);
    tmp = w->temp_path();
    EXPECT_NE(tmp.find(path + ".tmp."), std::string::npos);
    ASSERT_TRUE(w->write("new contents", 12).is_ok());
    EXPECT_TRUE(std::filesystem::exists(tmp));
  }
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_EQ(*read_file(path), "old");
  {
    auto w = AtomicWriter::open(path);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->write("ab", 2).is_ok());
    ASSERT_TRUE(w->write("cd", 2).is_ok());
    ASSERT_TRUE(w->commit().is_ok());
    EXPECT_FALSE(w->commit().is_ok());
  }
  EXPECT_EQ(*read_file(path), "abcd");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bna::io
