// Sampled-row oracle check (include/bna/attention_check.hpp). Independent of every kernel: the key
// list of each row is rebuilt from the graph and the softmax is done naively twice, in float64
// (ref64) and with f32 rounding points (ref_lp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "bna/attention_check.hpp"

namespace bna::attn {
namespace {

double floor_for(DType t) {
  switch (t) {
    case DType::kBF16: return 8e-3;
    case DType::kF16: return 1e-3;
    default: return 1e-5;
  }
}

struct Acc {
  double max_e = 0, max_lp = 0, sum_e = 0, sum_lp = 0;
  int64_t n = 0;
  bool bad = false;
  std::string why;
  void add(double got, double ref, double lp, const char* what, int64_t hq, int64_t i) {
    if (bad) return;
    if (std::isnan(got) || std::isinf(ref) || std::isinf(got)) {
      if (std::isnan(got) || got != ref) {
        std::ostringstream os;
        os << what << " head " << hq << " row " << i << ": got " << got << ", expected " << ref;
        bad = true;
        why = os.str();
      }
      return;
    }
    const double e = std::fabs(got - ref), elp = std::fabs(lp - ref);
    max_e = std::max(max_e, e);
    max_lp = std::max(max_lp, elp);
    sum_e += e;
    sum_lp += elp;
    ++n;
  }
};

}  // namespace

Expected<RowCheckReport> check_rows(const GraphSource& g, const Shape& s, const Options& opt, const float* q,
                                    const float* k, const float* v, const float* out, const float* lse,
                                    const std::vector<RowRef>& rows) {
  if (!g.dense && g.abi == nullptr)
    return invalid_argument("check_rows: graph source must be an ABI graph or dense");
  if (s.B != 1) return invalid_argument("check_rows: B = " + std::to_string(s.B) + ", expected 1");
  if (s.Hkv < 1 || s.Hq % s.Hkv != 0)
    return invalid_argument("check_rows: Hq = " + std::to_string(s.Hq) + " is not a multiple of Hkv = " +
                            std::to_string(s.Hkv));
  if (g.abi && (g.abi->H != s.Hkv || g.abi->T != s.Tk))
    return invalid_argument("check_rows: graph [H=" + std::to_string(g.abi->H) + ", T=" + std::to_string(g.abi->T) +
                            "] does not match Hkv = " + std::to_string(s.Hkv) + ", Tk = " + std::to_string(s.Tk));
  const int64_t dh = s.dh, G = s.Hq / s.Hkv;
  const double scale = opt.scale > 0 ? opt.scale : 1.0 / std::sqrt(static_cast<double>(dh));
  const float scale_f = static_cast<float>(scale);
  Acc ao, al;
  RowCheckReport rep;
  std::vector<int32_t> keys;
  std::vector<uint8_t> types;
  std::vector<double> s64;
  std::vector<float> s32;
  std::vector<double> o64(dh);
  std::vector<float> o32(dh);
  for (const RowRef& r : rows) {
    if (r.hq < 0 || r.hq >= s.Hq || r.i < 0 || r.i >= s.Tq)
      return invalid_argument("check_rows: row (head " + std::to_string(r.hq) + ", query " + std::to_string(r.i) +
                              ") outside [Hq=" + std::to_string(s.Hq) + ", Tq=" + std::to_string(s.Tq) + "]");
    const int64_t hk = r.hq / G, pos = s.q_offset + r.i;
    keys.clear();
    types.clear();
    if (g.dense) {
      for (int64_t j = 0; j <= pos && j < s.Tk; ++j) {
        keys.push_back(static_cast<int32_t>(j));
        types.push_back(static_cast<uint8_t>(graph::EdgeType::kWindow));
      }
    } else {
      const int32_t* row = g.abi->row(hk, pos);
      const uint8_t* ty = g.abi->row_types(hk, pos);
      for (int64_t d = 0; d < g.abi->D; ++d) {
        if (row[d] < 0 || row[d] > pos) continue;
        keys.push_back(row[d]);
        types.push_back(ty[d]);
      }
    }
    const float* qi = q + (r.hq * s.Tq + r.i) * dh;
    const float* got_o = out + (r.hq * s.Tq + r.i) * dh;
    const double got_l = lse[r.hq * s.Tq + r.i];
    const size_t n = keys.size();
    rep.keys += static_cast<int64_t>(n);
    ++rep.rows;
    if (n == 0) {
      for (int64_t c = 0; c < dh; ++c) ao.add(got_o[c], 0.0, 0.0, "out", r.hq, r.i);
      al.add(got_l, -std::numeric_limits<double>::infinity(), 0.0, "lse", r.hq, r.i);
      continue;
    }
    s64.assign(n, 0.0);
    s32.assign(n, 0.0f);
    double m64 = -std::numeric_limits<double>::infinity();
    float m32 = -std::numeric_limits<float>::infinity();
    for (size_t e = 0; e < n; ++e) {
      const float* kj = k + (hk * s.Tk + keys[e]) * dh;
      double d64 = 0;
      float d32 = 0;
      for (int64_t c = 0; c < dh; ++c) {
        d64 += static_cast<double>(qi[c]) * kj[c];
        d32 += qi[c] * kj[c];
      }
      const double b = opt.use_edge_bias ? opt.edge_bias[types[e] < 5 ? types[e] : 0] : 0.0;
      s64[e] = scale * d64 + b;
      s32[e] = scale_f * d32 + static_cast<float>(b);
      m64 = std::max(m64, s64[e]);
      m32 = std::max(m32, s32[e]);
    }
    double l64 = 0;
    float l32 = 0;
    std::fill(o64.begin(), o64.end(), 0.0);
    std::fill(o32.begin(), o32.end(), 0.0f);
    for (size_t e = 0; e < n; ++e) {
      const double p64 = std::exp(s64[e] - m64);
      const float p32 = std::exp(s32[e] - m32);
      l64 += p64;
      l32 += p32;
      const float* vj = v + (hk * s.Tk + keys[e]) * dh;
      for (int64_t c = 0; c < dh; ++c) {
        o64[c] += p64 * vj[c];
        o32[c] += p32 * vj[c];
      }
    }
    for (int64_t c = 0; c < dh; ++c)
      ao.add(got_o[c], o64[c] / l64, round_to(s.dtype, o32[c] / l32), "out", r.hq, r.i);
    al.add(got_l, m64 + std::log(l64), static_cast<double>(m32 + std::log(l32)), "lse", r.hq, r.i);
  }
  auto finish = [](const Acc& a, double floor, double& max_e, double& max_b, double& mean_e, double& mean_b) {
    max_e = a.max_e;
    max_b = 2 * a.max_lp + floor;
    mean_e = a.n ? a.sum_e / a.n : 0;
    mean_b = (a.n ? 2 * a.sum_lp / a.n : 0) + floor;
    return !a.bad && max_e <= max_b && mean_e <= mean_b;
  };
  const bool ok_o = finish(ao, floor_for(s.dtype), rep.out_max_err, rep.out_max_bound, rep.out_mean_err, rep.out_mean_bound);
  const bool ok_l = finish(al, 1e-5, rep.lse_max_err, rep.lse_max_bound, rep.lse_mean_err, rep.lse_mean_bound);
  rep.pass = ok_o && ok_l;
  if (ao.bad) rep.why = ao.why;
  else if (al.bad) rep.why = al.why;
  else if (!ok_o) rep.why = "out error above the FA3 bound";
  else if (!ok_l) rep.why = "lse error above the FA3 bound";
  return rep;
}

int64_t allowed_pairs(const graph::GraphAbi& g) {
  int64_t n = 0;
  for (int64_t h = 0; h < g.H; ++h)
    for (int64_t i = 0; i < g.T; ++i) {
      const int32_t* row = g.row(h, i);
      for (int64_t d = 0; d < g.D && row[d] >= 0; ++d) n += row[d] <= i;
    }
  return n;
}

}  // namespace bna::attn
