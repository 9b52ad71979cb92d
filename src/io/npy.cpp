// .npy reader and writer (see include/bna/npy.hpp for the accepted subset).
// The header dict is parsed by a small hand-written tokenizer for the Python literal subset numpy
// emits (strings, True/False, tuples of non-negative ints); every size is overflow-checked before
// use so arbitrary input bytes can never index out of bounds.
#include "bna/npy.hpp"

#include <cstring>
#include <limits>
#include <string>

#include "bna/io.hpp"

namespace bna::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct DictParser {
  const char* p;
  const char* end;
  std::string err;

  void skip_ws() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  bool eat(char c) {
    skip_ws();
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  }
  bool string(std::string& out) {
    skip_ws();
    if (p >= end || (*p != '\'' && *p != '"')) return false;
    const char q = *p++;
    const char* s = p;
    while (p < end && *p != q) {
      if (*p == '\\') return false;  // escapes never occur in valid headers
      ++p;
    }
    if (p >= end) return false;
    out.assign(s, p);
    ++p;
    return true;
  }
  bool word(const char* w) {
    skip_ws();
    const size_t n = std::strlen(w);
    if (static_cast<size_t>(end - p) >= n && std::memcmp(p, w, n) == 0) {
      p += n;
      return true;
    }
    return false;
  }
  bool integer(int64_t& v) {
    skip_ws();
    if (p >= end || *p < '0' || *p > '9') return false;
    v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
      const int d = *p - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) return false;
      v = v * 10 + d;
      ++p;
    }
    if (p < end && *p == 'L') ++p;  // Python 2 longs
    return true;
  }
  bool tuple(std::vector<int64_t>& dims) {
    if (!eat('(')) return false;
    dims.clear();
    for (;;) {
      if (eat(')')) return true;
      int64_t v;
      if (!integer(v)) return false;
      dims.push_back(v);
      if (dims.size() > 64) return false;
      if (eat(',')) continue;
      return eat(')');
    }
  }
};

Status bad(const std::string& m) { return corrupt("npy: " + m); }

}  // namespace

size_t npy_type_size(NpyType t) {
  switch (t) {
    case NpyType::kI32: return 4;
    case NpyType::kU8: return 1;
    case NpyType::kF32: return 4;
    case NpyType::kI64: return 8;
    case NpyType::kF64: return 8;
  }
  return 0;
}

const char* npy_type_descr(NpyType t) {
  switch (t) {
    case NpyType::kI32: return "<i4";
    case NpyType::kU8: return "|u1";
    case NpyType::kF32: return "<f4";
    case NpyType::kI64: return "<i8";
    case NpyType::kF64: return "<f8";
  }
  return "?";
}

std::string npy_header(NpyType t, const std::vector<int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + npy_type_descr(t) + "', 'fortran_order': False, 'shape': (";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) dict += ", ";
    dict += std::to_string(shape[k]);
  }
  if (shape.size() == 1) dict += ",";
  dict += "), }";
  // numpy's rule: pad with spaces so magic + version + len field + dict + '\n' is a multiple of 64.
  const bool v2 = dict.size() + 1 + 10 + 64 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  const size_t hlen = dict.size() + 1;
  const size_t pad = 64 - (prefix + hlen) % 64;
  const size_t total_hlen = hlen + pad;
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(v2 ? 2 : 1);
  out += static_cast<char>(0);
  const int nlen = v2 ? 4 : 2;
  for (int b = 0; b < nlen; ++b) out += static_cast<char>((total_hlen >> (8 * b)) & 0xff);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

Status write_npy(const std::string& path, NpyType t, const std::vector<int64_t>& shape, const void* data) {
  uint64_t n = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] < 0)
      return invalid_argument("npy: shape[" + std::to_string(k) + "]=" + std::to_string(shape[k]) +
                              ", expected >= 0");
    if (shape[k] != 0 && n > std::numeric_limits<uint64_t>::max() / 8 / static_cast<uint64_t>(shape[k]))
      return invalid_argument("npy: element count of the shape overflows");
    n *= static_cast<uint64_t>(shape[k]);
  }
  if (n > 0 && data == nullptr) return invalid_argument("npy: data is null for " + std::to_string(n) + " elements");
  const std::string header = npy_header(t, shape);
  BNA_ASSIGN_OR_RETURN(AtomicWriter w, AtomicWriter::open(path));
  BNA_RETURN_IF_ERROR(w.write(header.data(), header.size()));
  if (n > 0) BNA_RETURN_IF_ERROR(w.write(data, n * npy_type_size(t)));
  return w.commit();
}

Expected<NpyArray> parse_npy(const uint8_t* data, size_t n) {
  if (data == nullptr && n > 0) return invalid_argument("npy: null buffer");
  if (n < 10) return bad("file has " + std::to_string(n) + " bytes, expected at least 10 (magic + header length)");
  if (std::memcmp(data, kMagic, kMagicLen) != 0) return bad("bad magic, expected \\x93NUMPY");
  const int major = data[6], minor = data[7];
  if (major < 1 || major > 3 || minor != 0)
    return unimplemented("npy: format version " + std::to_string(major) + "." + std::to_string(minor) +
                         ", expected 1.0, 2.0 or 3.0");
  size_t prefix, hlen;
  if (major == 1) {
    prefix = 10;
    hlen = static_cast<size_t>(data[8]) | (static_cast<size_t>(data[9]) << 8);
  } else {
    if (n < 12) return bad("file has " + std::to_string(n) + " bytes, expected at least 12 for version " +
                           std::to_string(major));
    prefix = 12;
    hlen = static_cast<size_t>(data[8]) | (static_cast<size_t>(data[9]) << 8) |
           (static_cast<size_t>(data[10]) << 16) | (static_cast<size_t>(data[11]) << 24);
  }
  if (hlen > n - prefix)
    return bad("header length " + std::to_string(hlen) + " exceeds the " + std::to_string(n - prefix) +
               " bytes after the prefix");
  const char* hb = reinterpret_cast<const char*>(data + prefix);
  DictParser ps{hb, hb + hlen, {}};
  if (!ps.eat('{')) return bad("header does not start with '{'");
  std::string descr;
  bool have_descr = false, have_fortran = false, have_shape = false, fortran = false;
  std::vector<int64_t> shape;
  for (;;) {
    if (ps.eat('}')) break;
    std::string key;
    if (!ps.string(key)) return bad("header: expected a quoted key at offset " + std::to_string(ps.p - hb));
    if (!ps.eat(':')) return bad("header: expected ':' after key '" + key + "'");
    if (key == "descr") {
      if (!ps.string(descr)) return bad("header: 'descr' is not a string");
      have_descr = true;
    } else if (key == "fortran_order") {
      if (ps.word("True")) fortran = true;
      else if (ps.word("False")) fortran = false;
      else return bad("header: 'fortran_order' is not True or False");
      have_fortran = true;
    } else if (key == "shape") {
      if (!ps.tuple(shape)) return bad("header: 'shape' is not a tuple of non-negative integers");
      have_shape = true;
    } else {
      return bad("header: unexpected key '" + key + "', expected descr, fortran_order, shape");
    }
    if (ps.eat(',')) continue;
    if (ps.eat('}')) break;
    return bad("header: expected ',' or '}' at offset " + std::to_string(ps.p - hb));
  }
  ps.skip_ws();
  if (ps.p != ps.end) return bad("header: unexpected bytes after the dict at offset " + std::to_string(ps.p - hb));
  if (!have_descr || !have_fortran || !have_shape)
    return bad("header: missing key(s), expected descr, fortran_order and shape");
  if (fortran) return unimplemented("npy: fortran_order True, expected C order");
  NpyArray a;
  const std::string base = descr.size() == 3 ? descr.substr(1) : std::string();
  const char order = descr.empty() ? '?' : descr[0];
  if (base == "u1" || base == "b1") {
    if (order != '|' && order != '<' && order != '=' && order != '>')
      return unimplemented("npy: descr '" + descr + "', expected one of <i4 |u1 <f4 <i8 <f8");
    if (base == "b1") return unimplemented("npy: descr '" + descr + "', expected one of <i4 |u1 <f4 <i8 <f8");
    a.type = NpyType::kU8;
  } else {
    if (order == '>')
      return unimplemented("npy: descr '" + descr + "' is big-endian, expected little-endian (<)");
    if (order != '<' && order != '=')
      return unimplemented("npy: descr '" + descr + "', expected one of <i4 |u1 <f4 <i8 <f8");
    if (base == "i4") a.type = NpyType::kI32;
    else if (base == "f4") a.type = NpyType::kF32;
    else if (base == "i8") a.type = NpyType::kI64;
    else if (base == "f8") a.type = NpyType::kF64;
    else return unimplemented("npy: descr '" + descr + "', expected one of <i4 |u1 <f4 <i8 <f8");
  }
  uint64_t count = 1;
  const uint64_t esz = npy_type_size(a.type);
  for (size_t k = 0; k < shape.size(); ++k) {
    const uint64_t d = static_cast<uint64_t>(shape[k]);
    if (d != 0 && count > (std::numeric_limits<uint64_t>::max() / esz) / d)
      return bad("shape dimension " + std::to_string(k) + " = " + std::to_string(shape[k]) +
                 " makes the element count overflow");
    count *= d;
  }
  const uint64_t need = count * esz;
  const uint64_t have = n - prefix - hlen;
  if (have != need)
    return bad("data has " + std::to_string(have) + " bytes, expected " + std::to_string(need) + " for shape and '" +
               descr + "'");
  a.shape = std::move(shape);
  try {
    a.bytes.assign(data + prefix + hlen, data + n);
  } catch (const std::exception&) {
    return io_error("npy: cannot allocate " + std::to_string(need) + " bytes");
  }
  return a;
}

Expected<NpyArray> read_npy(const std::string& path) {
  BNA_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  auto a = parse_npy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!a) return Status(a.status().code(), a.status().message() + " (in '" + path + "')");
  return a;
}

}  // namespace bna::io
