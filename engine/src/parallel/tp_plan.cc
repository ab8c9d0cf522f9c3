// make_tp_plan(): the divisibility rules of tensor parallelism, each failure naming its dimension.
#include "parallel/tp_plan.h"

#include <stdexcept>
#include <string>

namespace engine::parallel {

TpPlan make_tp_plan(const ModelConfig& c, int size, std::string_view option) {
  const std::string head = std::string(option) + " " + std::to_string(size) + ": ";
  auto fail = [&](const std::string& what) { throw std::invalid_argument(head + what); };
  if (size < 1) fail("must be >= 1");
  const std::string n = std::to_string(size), model = c.name.empty() ? "the model" : c.name;
  auto split = [&](int value, const char* dimension) {
    if (value % size != 0)
      fail(model + "'s " + dimension + " " + std::to_string(value) + " does not split into " + n + " equal parts");
    return value / size;
  };
  TpPlan p;
  p.size = size;
  p.n_heads = split(c.n_heads, "attention heads (n_heads, num_attention_heads)");
  if (c.n_kv_heads >= size) {
    p.n_kv_heads = split(c.n_kv_heads, "KV heads (n_kv_heads, num_key_value_heads)");
  } else {
    if (size % c.n_kv_heads != 0)
      fail(model + "'s KV heads (n_kv_heads, num_key_value_heads) " + std::to_string(c.n_kv_heads) +
           " neither split into " + n + " equal parts nor replicate evenly over " + n +
           " ranks (N must divide them or be a multiple of them)");
    p.n_kv_heads = 1;
    p.kv_replicas = size / c.n_kv_heads;
  }
  p.hidden = split(c.hidden_dim, "intermediate size (hidden_dim, intermediate_size)");
  p.vocab = split(c.vocab_size, "vocabulary (vocab_size)");
  return p;
}

}  // namespace engine::parallel
