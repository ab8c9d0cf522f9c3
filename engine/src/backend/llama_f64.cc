#include "backend/llama_f64.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace engine::reference {

double bf16_round(double x) {
  float f = static_cast<float>(x);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return f;  // inf/NaN unchanged
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

double e4m3_round(double x) {
  if (std::isnan(x)) return x;
  const double a = std::fabs(x);
  if (a >= 448.0) return std::copysign(448.0, x);
  // Spacing of e4m3 values around a: 2^-9 below the smallest normal 2^-6, else 2^(exponent - 3).
  const double step = a < 0x1p-6 ? 0x1p-9 : std::ldexp(1.0, std::ilogb(a) - 3);
  return std::copysign(std::nearbyint(a / step) * step, x);  // nearbyint: ties to even (the default mode)
}

void fp8_row_round(double* row, int n) {
  float m = 0.f;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<float>(row[i])));
  const float scale = m > 0.f ? m / 448.f : 1.f;
  for (int i = 0; i < n; ++i)
    row[i] = e4m3_round(static_cast<float>(static_cast<float>(row[i]) / scale)) * static_cast<double>(scale);
}

namespace {

using Mat = std::vector<std::vector<double>>;  // [tokens][features]

std::vector<double> to_f64(const Tensor& t, bool round) {
  const std::vector<float> f = t.to_f32();
  std::vector<double> d(f.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < int64_t(f.size()); ++i) d[size_t(i)] = round ? bf16_round(f[size_t(i)]) : f[size_t(i)];
  return d;
}

/// y[p] = W x[p] for every token p; W [rows, cols] row-major. Each weight row is read once for all tokens.
Mat matmul(const std::vector<double>& W, const Mat& x) {
  const size_t cols = x[0].size(), rows = W.size() / cols;
  Mat y(x.size(), std::vector<double>(rows));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < int64_t(rows); ++r) {
    const double* w = W.data() + size_t(r) * cols;
    for (size_t p = 0; p < x.size(); ++p) {
      const double* v = x[p].data();
      double s = 0;
      for (size_t i = 0; i < cols; ++i) s += w[i] * v[i];
      y[p][size_t(r)] = s;
    }
  }
  return y;
}

}  // namespace

std::vector<std::vector<double>> llama_f64_logits(const ModelWeights& w, const std::vector<int32_t>& tokens,
                                                  int first, unsigned pts) {
  const auto& c = w.config;
  const int D = c.dim, hd = c.head_dim, H = c.n_heads, KV = c.n_kv_heads, P = int(tokens.size());
  auto mat = [&](const Tensor& t) { return to_f64(t, pts & kWeights); };
  auto vec = [&](const Tensor& t) { return to_f64(t, false); };
  auto round_if = [&](Mat& m, unsigned bit) {
    if (pts & bit)
      for (auto& row : m)
        for (double& a : row) a = bf16_round(a);
  };
  // K or V as the cache stores it: fp8 rows (rounded from the unrounded values, as rope_kv.cu does) or bf16.
  auto cache_round = [&](Mat& m, unsigned fp8_bit) {
    if (!(pts & fp8_bit)) return round_if(m, kKvCache);
    for (auto& row : m)
      for (int h = 0; h < KV; ++h) fp8_row_round(row.data() + size_t(h) * hd, hd);
  };
  auto rms = [&](const Mat& x, const std::vector<double>& g) {
    Mat o(x.size(), std::vector<double>(size_t(D)));
    for (size_t p = 0; p < x.size(); ++p) {
      double ss = 0;
      for (double a : x[p]) ss += a * a;
      const double r = 1.0 / std::sqrt(ss / D + c.norm_eps);
      for (int i = 0; i < D; ++i) o[p][size_t(i)] = g[size_t(i)] * x[p][size_t(i)] * r;
    }
    return o;
  };
  auto rope = [&](std::vector<double>& v, int pos) {  // HF half pairing: (i, i + hd/2) rotate together
    for (size_t h = 0; h < v.size() / size_t(hd); ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const double a = pos * std::pow(double(c.rope_theta), -2.0 * i / hd);
        double& x0 = v[h * hd + size_t(i)];
        double& x1 = v[h * hd + size_t(i + hd / 2)];
        const double a0 = x0, a1 = x1;
        x0 = a0 * std::cos(a) - a1 * std::sin(a);
        x1 = a1 * std::cos(a) + a0 * std::sin(a);
      }
  };

  Mat x(static_cast<size_t>(P));
  {
    const std::vector<double> emb = mat(w.tok_embeddings);
    for (int p = 0; p < P; ++p)
      x[size_t(p)].assign(emb.begin() + size_t(tokens[size_t(p)]) * D, emb.begin() + size_t(tokens[size_t(p)] + 1) * D);
  }
  for (const auto& L : w.layers) {
    Mat h = rms(x, vec(L.attn_norm));
    round_if(h, kNormOut);
    Mat q = matmul(mat(L.wq), h), k = matmul(mat(L.wk), h), v = matmul(mat(L.wv), h);
    round_if(q, kQkvOut), round_if(k, kQkvOut), round_if(v, kQkvOut);
    for (int p = 0; p < P; ++p) rope(q[size_t(p)], p), rope(k[size_t(p)], p);
    round_if(q, kQRoped), cache_round(k, kKFp8), cache_round(v, kVFp8);

    Mat att(size_t(P), std::vector<double>(size_t(H) * hd, 0.0));
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int p = 0; p < P; ++p)
      for (int hh = 0; hh < H; ++hh) {
        const int kh = hh / (H / KV);
        std::vector<double> sc(size_t(p) + 1);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= p; ++j) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += q[size_t(p)][size_t(hh * hd + i)] * k[size_t(j)][size_t(kh * hd + i)];
          mx = std::max(mx, sc[size_t(j)] = d / std::sqrt(double(hd)));
        }
        for (double& s : sc) sum += (s = std::exp(s - mx));
        for (int j = 0; j <= p; ++j)
          for (int i = 0; i < hd; ++i)
            att[size_t(p)][size_t(hh * hd + i)] += sc[size_t(j)] / sum * v[size_t(j)][size_t(kh * hd + i)];
      }
    round_if(att, kAttnOut);
    Mat o = matmul(mat(L.wo), att);
    round_if(o, kDelta);
    for (int p = 0; p < P; ++p)
      for (int i = 0; i < D; ++i) x[size_t(p)][size_t(i)] += o[size_t(p)][size_t(i)];

    Mat h2 = rms(x, vec(L.ffn_norm));
    round_if(h2, kNormOut);
    Mat g = matmul(mat(L.w_gate), h2), u = matmul(mat(L.w_up), h2);
    round_if(g, kGateUp), round_if(u, kGateUp);
    for (size_t p = 0; p < g.size(); ++p)
      for (size_t i = 0; i < g[p].size(); ++i) g[p][i] = g[p][i] / (1.0 + std::exp(-g[p][i])) * u[p][i];
    round_if(g, kActOut);
    Mat dn = matmul(mat(L.w_down), g);
    round_if(dn, kDelta);
    for (int p = 0; p < P; ++p)
      for (int i = 0; i < D; ++i) x[size_t(p)][size_t(i)] += dn[size_t(p)][size_t(i)];
  }
  Mat last(x.begin() + first, x.end());
  Mat hf = rms(last, vec(w.final_norm));
  round_if(hf, kFinalNormOut);
  return matmul(mat(w.lm_head), hf);
}

}  // namespace engine::reference
