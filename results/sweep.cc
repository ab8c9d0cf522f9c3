#include "results/sweep.h"

#include <cmath>

#include "common/format_number.h"

namespace results {

std::string qps_label(double qps) { return std::isinf(qps) ? "inf" : common::format_number(qps, 6); }

std::string batch_size_label(int batch_size) { return batch_size > 0 ? std::to_string(batch_size) : "server"; }

std::string cell_dir_name(int batch_size, double qps) {
  const std::string q = "qps" + qps_label(qps);
  return batch_size > 0 ? "bs" + std::to_string(batch_size) + "_" + q : q;
}

std::string concurrency_cell_dir_name(int batch_size, int concurrency) {
  const std::string c = "c" + std::to_string(concurrency);
  return batch_size > 0 ? "bs" + std::to_string(batch_size) + "_" + c : c;
}

}  // namespace results
