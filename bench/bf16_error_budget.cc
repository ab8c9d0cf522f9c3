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
//                     [--base I]           (the row every other is scored against; default 0, float64)
//                     [--reference F.h5]   (teacher-forced: the first --prompts requests of a logits file, each
//                                           its prompt + tokens, every step scored; --tokens/--last unused)
//
// Prompts are random token ids; the last `--last` positions of each are scored. Rounding points (names
// used in the table; "+" combines):
//   h     RMSNorm outputs (QKV and gate/up GEMM inputs)   att   attention output (O GEMM input)
//   act   SwiGLU output (down GEMM input)                 hf    final-norm output (lm_head GEMM input)
//   qkv   QKV GEMM outputs before RoPE                     q     q after RoPE
//   kv    K (after RoPE) and V as stored in the cache      delta O and down GEMM outputs before the residual add
//   gu    gate/up GEMM outputs                            w     the weights themselves (a no-op for bf16 checkpoints)
// h+att+act+hf are unavoidable with bf16 tensor-core GEMMs; kv is what a bf16 KV cache costs. The last three
// rows price the fp8 KV cache (e4m3, a scale per (token, kv head), as rope_kv.cu stores it) for K and V together
// and each alone; `--base 9` scores every row against the CUDA bf16 row instead of float64, i.e. what the fp8
// cache changes against the bf16 cache, the comparison `bench/gpu/run.sh fp8` makes on the GPU.
// The forward pass is engine::reference::llama_f64_logits (engine/src/backend/llama_f64.h), the same float64
// Llama the backends' tests compare against.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "accuracy/kl_divergence.h"
#include "accuracy/logits_file.h"
#include "backend/llama_f64.h"
#include "model/model.h"

namespace {

using namespace engine::reference;
using Mat = std::vector<std::vector<double>>;  // [positions][vocab]

struct Variant {
  std::string name;
  unsigned pts;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"none (float64)", 0},
      {"h", kNormOut},
      {"att", kAttnOut},
      {"act", kActOut},
      {"hf", kFinalNormOut},
      {"kv", kKvCache},
      {"h+att+act+hf (GEMM inputs)", kGemmInputs},
      {"GEMM inputs+kv", kGemmInputs | kKvCache},
      {"w", kWeights},
      {"GEMM inputs+kv+q+gu+w (CUDA bf16)", kCudaBf16 | kWeights},
      {"... +qkv+delta (CUDA v4 bf16)", kCudaBf16 | kQkvOut | kDelta | kWeights},
      {"CUDA bf16 + fp8 K and V cache", kCudaBf16 | kWeights | kKFp8 | kVFp8},
      {"CUDA bf16 + fp8 V only (K bf16)", kCudaBf16 | kWeights | kVFp8},
      {"CUDA bf16 + fp8 K only (V bf16)", kCudaBf16 | kWeights | kKFp8},
  };
  return v;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "bf16_error_budget: %s\nusage: bf16_error_budget MODEL [--tokens N] [--prompts N] "
               "[--last N] [--rtol X] [--atol X] [--seed N] [--variants I,J,...] [--base I] [--reference F.h5]\n", why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("MODEL missing (a model path or dummy:<preset>)");
  const std::string model = argv[1];
  int P = 40, nprompts = 3, last = 8;
  double rtol = 2e-2, atol = 2e-2;
  uint64_t seed = 7;
  long base_row = 0;
  std::string reference;
  std::vector<bool> want(variants().size(), true);
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage((a + ": missing value").c_str());
    const char* v = argv[++i];
    if (a == "--reference") {
      reference = v;
      continue;
    }
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
    if (a == "--base") {
      base_row = long(num);
      if (base_row < 0 || base_row >= long(want.size()) || double(base_row) != num)
        usage(("--base: expected a row index 0.." + std::to_string(want.size() - 1) + ", got '" + v + "'").c_str());
    } else if (a == "--tokens") P = int(num);
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
  // Each sequence and the position its scored rows start at: random tokens with the last `last` scored, or a
  // reference request's prompt + its tokens but the last, scored from the prompt's last position (the logits
  // of every step, as the engine produces them teacher-forced).
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int> first;
  if (reference.empty()) {
    prompts.assign(static_cast<size_t>(nprompts), std::vector<int32_t>(static_cast<size_t>(P)));
    for (auto& p : prompts)
      for (auto& t : p) t = int32_t(3 + rng() % uint64_t(V - 3));
    first.assign(prompts.size(), P - last);
    std::printf("%s: %d layers, dim %d; %d random prompts of %d tokens, last %d positions scored; allclose rtol %g "
                "atol %g; %d threads\n", model.c_str(), w.config.n_layers, w.config.dim, nprompts, P, last, rtol, atol,
                omp_get_max_threads());
  } else {
    try {
      const accuracy::LogitsReader ref(reference);
      for (const std::string& id : ref.ids()) {
        if (int(prompts.size()) == nprompts) break;
        const accuracy::RequestLogits r = ref.read(id);
        if (r.prompt_tokens.empty() || r.tokens.empty()) continue;
        std::vector<int32_t> seq = r.prompt_tokens;
        seq.insert(seq.end(), r.tokens.begin(), r.tokens.end() - 1);
        for (int32_t t : seq)
          if (t < 0 || t >= V)
            throw accuracy::LogitsFileError(reference + ": request " + id + " has token " + std::to_string(t) +
                                            ", outside the model's vocabulary of " + std::to_string(V));
        first.push_back(int(r.prompt_tokens.size()) - 1);
        prompts.push_back(std::move(seq));
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bf16_error_budget: %s\n", e.what());
      return 2;
    }
    if (prompts.empty()) {
      std::fprintf(stderr, "bf16_error_budget: %s: no request with a prompt and tokens\n", reference.c_str());
      return 2;
    }
    std::printf("%s: %d layers, dim %d; %zu requests of %s teacher-forced, every step scored; allclose rtol %g "
                "atol %g; %d threads\n", model.c_str(), w.config.n_layers, w.config.dim, prompts.size(),
                reference.c_str(), rtol, atol, omp_get_max_threads());
  }
  std::vector<Mat> base;
  const unsigned base_pts = variants()[size_t(base_row)].pts;
  for (size_t i = 0; i < prompts.size(); ++i) base.push_back(llama_f64_logits(w, prompts[i], first[i], base_pts));
  std::printf("scored against row %ld (%s)\n", base_row, variants()[size_t(base_row)].name.c_str());
  std::printf("   %-36s %9s %10s %12s %8s %10s\n", "rounding points", "allclose", "max|diff|", "max row rel", "top-1",
              "max KL");
  for (size_t vi = 0; vi < variants().size(); ++vi) {
    if (!want[vi] || long(vi) == base_row) continue;
    const Variant& v = variants()[vi];
    int64_t close = 0, total = 0;
    double max_abs = 0, max_rel = 0, max_kl = 0;
    int top = 0, rows = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Mat l = llama_f64_logits(w, prompts[i], first[i], v.pts);
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
        max_kl = std::max(max_kl, accuracy::kl_divergence(ref.data(), l[r].data(), V));
        top += std::max_element(l[r].begin(), l[r].end()) - l[r].begin() ==
               std::max_element(ref.begin(), ref.end()) - ref.begin();
        ++rows;
      }
    }
    std::printf("%2zu %-36s %9.4f %10.4g %12.3e %5d/%d %10.3g\n", vi, v.name.c_str(), double(close) / double(total), max_abs,
                max_rel, top, rows, max_kl);
    std::fflush(stdout);
  }
  return 0;
}
