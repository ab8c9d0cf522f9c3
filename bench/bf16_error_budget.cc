// bf16_error_budget: how much of a model's logits precision each bf16 rounding point costs.
//
// Runs the model in float64 (the same weights the engine loads) with values rounded to bf16 at chosen
// points of the forward pass, and scores each variant against the unrounded float64 logits the way
// acc_allclose does (|x - ref| <= atol + rtol*|ref|), plus max |diff|, the worst row's relative L2 error and
// top-1 agreement. It answers "is this GPU-vs-CPU difference a bug or the price of bf16?" before anyone
// looks at a kernel: if the ideal bf16 pipeline already misses a tolerance, no kernel will meet it.
//
//   bf16_error_budget MODEL [--tokens 40] [--prompts 3] [--last 8] [--rtol 2e-2] [--atol 2e-2] [--seed 7]
//                     [--variants 0,6,8]   (rows of the table to compute; default all; 0 is the float64 base)
//
// Prompts are random token ids; the last `--last` positions of each are scored. Rounding points (names
// used in the table; "+" combines):
//   h     RMSNorm outputs (QKV and gate/up GEMM inputs)   att   attention output (O GEMM input)
//   act   SwiGLU output (down GEMM input)                 hf    final-norm output (lm_head GEMM input)
//   qkv   QKV GEMM outputs before RoPE                     q     q after RoPE
//   kv    K (after RoPE) and V as stored in the cache      delta O and down GEMM outputs before the residual add
//   gu    gate/up GEMM outputs                            w     the weights themselves (a no-op for bf16 checkpoints)
// h+att+act+hf are unavoidable with bf16 tensor-core GEMMs; kv is what a bf16 KV cache costs.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/model.h"

namespace {

enum Point : unsigned { kH = 1, kAtt = 2, kAct = 4, kHf = 8, kQkv = 16, kQ = 32, kKv = 64, kDelta = 128, kGu = 256, kW = 512 };
constexpr unsigned kGemmInputs = kH | kAtt | kAct | kHf;

double bf16_round(double x) {  // round to nearest even, like __float2bfloat16
  float f = static_cast<float>(x);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return f;  // inf/NaN unchanged
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

using Mat = std::vector<std::vector<double>>;  // [tokens][features]

std::vector<double> to_f64(const engine::Tensor& t, bool round) {
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

/// Logits [positions first..P-1][vocab] of one prompt with the rounding points in `pts`.
Mat forward(const engine::ModelWeights& w, const std::vector<int32_t>& tokens, int first, unsigned pts) {
  const auto& c = w.config;
  const int D = c.dim, hd = c.head_dim, H = c.n_heads, KV = c.n_kv_heads, P = int(tokens.size());
  // Matrices only: the CUDA backend keeps norm weights in f32.
  auto mat = [&](const engine::Tensor& t) { return to_f64(t, pts & kW); };
  auto vec = [&](const engine::Tensor& t) { return to_f64(t, false); };
  auto round_if = [&](Mat& m, unsigned bit) {
    if (pts & bit)
      for (auto& row : m)
        for (double& a : row) a = bf16_round(a);
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
  auto rope = [&](std::vector<double>& v, int pos) {  // HF half pairing (i, i + hd/2)
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
    round_if(h, kH);
    Mat q = matmul(mat(L.wq), h), k = matmul(mat(L.wk), h), v = matmul(mat(L.wv), h);
    round_if(q, kQkv), round_if(k, kQkv), round_if(v, kQkv);
    for (int p = 0; p < P; ++p) rope(q[size_t(p)], p), rope(k[size_t(p)], p);
    round_if(q, kQ), round_if(k, kKv), round_if(v, kKv);
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
          for (int i = 0; i < hd; ++i) att[size_t(p)][size_t(hh * hd + i)] += sc[size_t(j)] / sum * v[size_t(j)][size_t(kh * hd + i)];
      }
    round_if(att, kAtt);
    Mat o = matmul(mat(L.wo), att);
    round_if(o, kDelta);
    for (int p = 0; p < P; ++p)
      for (int i = 0; i < D; ++i) x[size_t(p)][size_t(i)] += o[size_t(p)][size_t(i)];
    Mat h2 = rms(x, vec(L.ffn_norm));
    round_if(h2, kH);
    Mat g = matmul(mat(L.w_gate), h2), u = matmul(mat(L.w_up), h2);
    round_if(g, kGu), round_if(u, kGu);
    for (size_t p = 0; p < g.size(); ++p)
      for (size_t i = 0; i < g[p].size(); ++i) g[p][i] = g[p][i] / (1.0 + std::exp(-g[p][i])) * u[p][i];
    round_if(g, kAct);
    Mat dn = matmul(mat(L.w_down), g);
    round_if(dn, kDelta);
    for (int p = 0; p < P; ++p)
      for (int i = 0; i < D; ++i) x[size_t(p)][size_t(i)] += dn[size_t(p)][size_t(i)];
  }
  Mat last(x.begin() + first, x.end());
  Mat hf = rms(last, vec(w.final_norm));
  round_if(hf, kHf);
  return matmul(mat(w.lm_head), hf);
}

struct Variant {
  std::string name;
  unsigned pts;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"none (float64)", 0},
      {"h", kH},
      {"att", kAtt},
      {"act", kAct},
      {"hf", kHf},
      {"kv", kKv},
      {"h+att+act+hf (GEMM inputs)", kGemmInputs},
      {"GEMM inputs+kv", kGemmInputs | kKv},
      {"w", kW},
      {"GEMM inputs+kv+q+gu+w (CUDA bf16)", kGemmInputs | kKv | kQ | kGu | kW},
      {"... +qkv+delta (CUDA v4 bf16)", kGemmInputs | kKv | kQ | kGu | kQkv | kDelta | kW},
  };
  return v;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "bf16_error_budget: %s\nusage: bf16_error_budget MODEL [--tokens N] [--prompts N] "
               "[--last N] [--rtol X] [--atol X] [--seed N] [--variants I,J,...]\n", why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("MODEL missing (a model path or dummy:<preset>)");
  const std::string model = argv[1];
  int P = 40, nprompts = 3, last = 8;
  double rtol = 2e-2, atol = 2e-2;
  uint64_t seed = 7;
  std::vector<bool> want(variants().size(), true);
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage((a + ": missing value").c_str());
    const char* v = argv[++i];
    if (a == "--variants") {
      want.assign(want.size(), false);
      for (const char* p = v; *p;) {
        char* e = nullptr;
        const long k = std::strtol(p, &e, 10);
        if (e == p || k < 0 || k >= long(want.size()) || (*e != ',' && *e != '\0'))
          usage(("--variants: expected indices 0.." + std::to_string(want.size() - 1) + " separated by commas, got '" +
                 v + "'").c_str());
        want[size_t(k)] = true;
        p = *e ? e + 1 : e;
      }
      continue;
    }
    char* end = nullptr;
    const double num = std::strtod(v, &end);
    if (end == v || *end != '\0') usage((a + ": expected a number, got '" + v + "'").c_str());
    if (a == "--tokens") P = int(num);
    else if (a == "--prompts") nprompts = int(num);
    else if (a == "--last") last = int(num);
    else if (a == "--rtol") rtol = num;
    else if (a == "--atol") atol = num;
    else if (a == "--seed") seed = uint64_t(num);
    else usage(("unknown option " + a).c_str());
  }
  if (P < 1 || nprompts < 1 || last < 1 || last > P) usage("need 1 <= --last <= --tokens and --prompts >= 1");
  engine::ModelWeights w;
  try {
    w = engine::load_model(model, 5);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bf16_error_budget: %s\n", e.what());
    return 2;
  }
  const int V = w.config.vocab_size;
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(nprompts), std::vector<int32_t>(static_cast<size_t>(P)));
  for (auto& p : prompts)
    for (auto& t : p) t = int32_t(3 + rng() % uint64_t(V - 3));
  std::printf("%s: %d layers, dim %d; %d random prompts of %d tokens, last %d positions scored; allclose rtol %g "
              "atol %g; %d threads\n", model.c_str(), w.config.n_layers, w.config.dim, nprompts, P, last, rtol, atol,
              omp_get_max_threads());
  std::vector<Mat> base;
  for (const auto& p : prompts) base.push_back(forward(w, p, P - last, 0));
  std::printf("   %-36s %9s %10s %12s %8s\n", "bf16 rounding points", "allclose", "max|diff|", "max row rel", "top-1");
  for (size_t vi = 0; vi < variants().size(); ++vi) {
    if (!want[vi]) continue;
    const Variant& v = variants()[vi];
    int64_t close = 0, total = 0;
    double max_abs = 0, max_rel = 0;
    int top = 0, rows = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Mat l = v.pts ? forward(w, prompts[i], P - last, v.pts) : base[i];
      for (size_t r = 0; r < l.size(); ++r) {
        const std::vector<double>& ref = base[i][r];
        double num = 0, den = 0;
        for (int j = 0; j < V; ++j) {
          const double d = std::fabs(l[r][size_t(j)] - ref[size_t(j)]);
          num += d * d, den += ref[size_t(j)] * ref[size_t(j)];
          max_abs = std::max(max_abs, d);
          close += d <= atol + rtol * std::fabs(ref[size_t(j)]) ? 1 : 0;
          ++total;
        }
        max_rel = std::max(max_rel, std::sqrt(num / std::max(den, 1e-300)));
        top += std::max_element(l[r].begin(), l[r].end()) - l[r].begin() ==
               std::max_element(ref.begin(), ref.end()) - ref.begin();
        ++rows;
      }
    }
    std::printf("%2zu %-36s %9.4f %10.4g %12.3e %5d/%d\n", vi, v.name.c_str(), double(close) / double(total), max_abs, max_rel,
                top, rows);
    std::fflush(stdout);
  }
  return 0;
}
