// LogitsWriter (logits_file.h; the layout is in logits_file.cc): versions 1 and 2 request by request, version 3
// batched into appendable datasets, all into "<path>.tmp", renamed on close().
#include "accuracy/logits_file.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <unordered_set>

#include "accuracy/float16.h"
#include "accuracy/h5_util.h"
#include "accuracy/logits_v3_index.h"
#include "accuracy/text.h"

namespace accuracy {
namespace {

namespace fs = std::filesystem;
using h5::Handle;
using h5::write_dataset;

// A version-3 dataset that grows by rows: [rows] or [rows, width], chunked, unlimited along the rows.
struct Appendable {
  const char* name = "";
  Handle ds;
  hid_t mem_type = H5I_INVALID_HID;
  hsize_t width = 0;  // 0: one-dimensional
  hsize_t rows = 0;

  void create(hid_t parent, const char* dataset, hid_t file_type, hid_t memory_type, hsize_t row_width,
              hsize_t chunk_rows, int compression) {
    name = dataset;
    mem_type = memory_type;
    width = row_width;
    const int rank = width ? 2 : 1;
    const hsize_t dims[2] = {0, width};
    const hsize_t max[2] = {H5S_UNLIMITED, width};
    const hsize_t chunk[2] = {chunk_rows, width};
    Handle space = h5::space(H5Screate_simple(rank, dims, max));
    Handle dcpl = h5::plist(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), rank, chunk);
    if (compression > 0) H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compression));
    ds = h5::dataset(H5Dcreate2(parent, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    if (!ds.valid()) throw std::runtime_error(cat("cannot create dataset /", name));
  }

  // Rows [rows, rows + n) from `data` (n * max(width, 1) values of mem_type).
  void append(const void* data, hsize_t n) {
    if (n == 0) return;
    const int rank = width ? 2 : 1;
    const hsize_t new_dims[2] = {rows + n, width};
    if (H5Dset_extent(ds.get(), new_dims) < 0) throw std::runtime_error(cat("/", name, ": cannot extend"));
    Handle file_space = h5::space(H5Dget_space(ds.get()));
    const hsize_t start[2] = {rows, 0};
    const hsize_t count[2] = {n, width};
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    Handle mem_space = h5::space(H5Screate_simple(rank, count, nullptr));
    if (H5Dwrite(ds.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data) < 0)
      throw std::runtime_error(cat("/", name, ": write failed (disk full?)"));
    rows += n;
  }
};

}  // namespace

using namespace v3;

struct LogitsWriter::Impl {
  std::string tmp_path;
  FileInfo info;
  WriterOptions options;
  int version = 1;
  Handle file;
  Handle requests;  // versions 1 and 2
  bool closed = false;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();

  // Version 3: the datasets, and the batch not yet appended to them (offsets in it count from the file's start).
  struct Batch {
    std::vector<int64_t> index;
    std::string ids, text;
    std::vector<int32_t> prompt, tokens, top_ids;
    std::vector<float> token_lps, top_lps;
    size_t bytes() const {
      return index.size() * 8 + ids.size() + text.size() + 4 * (prompt.size() + tokens.size() + top_ids.size() +
                                                                 token_lps.size() + top_lps.size());
    }
    void clear() {
      index.clear(); ids.clear(); text.clear(); prompt.clear(); tokens.clear(); top_ids.clear();
      token_lps.clear(); top_lps.clear();
    }
  } batch;
  Appendable index, ids, text, prompt, tokens, token_lps, top_ids, top_lps;
  int64_t n_id_bytes = 0, n_text_bytes = 0, n_prompt = 0, n_steps = 0;  // written and batched
  std::unordered_set<std::string> seen;

  void create_v3(int compression) {
    hid_t root = file.get();
    const auto k = static_cast<hsize_t>(info.top_k);
    const hsize_t step_chunk = std::max<hsize_t>(64, 16384 / k);  // ~64 KiB chunks of top-K rows
    index.create(root, "index", H5T_STD_I64LE, H5T_NATIVE_INT64, kIndexColumns, 256, 0);
    h5::write_string_attr(index.ds.get(), "columns", kIndexColumnNames);
    ids.create(root, "ids", H5T_STD_U8LE, H5T_NATIVE_UINT8, 0, 4096, 0);
    text.create(root, "prompt_text", H5T_STD_U8LE, H5T_NATIVE_UINT8, 0, 65536, compression);
    prompt.create(root, "prompt_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, 0, 16384, compression);
    tokens.create(root, "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, 0, 16384, 0);
    token_lps.create(root, "token_logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, 16384, 0);
    top_ids.create(root, "top_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, k, step_chunk, compression);
    top_lps.create(root, "top_logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, k, step_chunk, compression);
  }

  // The batch appended, the index last (a reader finds a request only once its rows are in).
  void append_batch() {
    if (batch.index.empty()) return;
    const auto k = static_cast<hsize_t>(info.top_k);
    ids.append(batch.ids.data(), batch.ids.size());
    text.append(batch.text.data(), batch.text.size());
    prompt.append(batch.prompt.data(), batch.prompt.size());
    tokens.append(batch.tokens.data(), batch.tokens.size());
    token_lps.append(batch.token_lps.data(), batch.token_lps.size());
    top_ids.append(batch.top_ids.data(), batch.top_ids.size() / k);
    top_lps.append(batch.top_lps.data(), batch.top_lps.size() / k);
    index.append(batch.index.data(), batch.index.size() / kIndexColumns);
    batch.clear();
  }

  void close_datasets() {
    for (Appendable* a : {&index, &ids, &text, &prompt, &tokens, &token_lps, &top_ids, &top_lps}) a->ds.reset();
  }

  void write_v3(const RequestLogits& r);  ///< into the batch; std::invalid_argument on a duplicate id
};

LogitsWriter::LogitsWriter(const std::string& path, const FileInfo& info, const WriterOptions& options)
    : impl_(std::make_unique<Impl>()), path_(path) {
  auto fail = [&](const std::string& what) { return LogitsFileError(cat("logits file ", path, ": ", what)); };
  if (path.empty()) throw LogitsFileError("logits file: empty path");
  if (!(options.flush_interval_s >= 0)) throw fail(cat("flush interval ", options.flush_interval_s, " s is not >= 0"));
  if (options.compression < 0 || options.compression > 9)
    throw fail(cat("compression level ", options.compression, " is not 0-9"));
  if (info.vocab_size <= 0) throw fail(cat("vocab_size ", info.vocab_size, " must be positive"));
  if (info.top_k < 0) throw fail(cat("top_k ", info.top_k, " must be >= 0"));
  if (options.top_k_version != 2 && options.top_k_version != 3)
    throw fail(cat("top-K layout version ", options.top_k_version, " is not 2 or 3"));
  impl_->tmp_path = path + ".tmp";
  impl_->info = info;
  impl_->options = options;
  impl_->version = info.top_k > 0 ? options.top_k_version : 1;  // a dense file stays readable by version-1 readers

  std::lock_guard lock(h5::mutex());
  h5::silence_errors();
  impl_->file = h5::file(H5Fcreate(impl_->tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!impl_->file.valid())
    throw LogitsFileError(cat("logits file ", path, ": cannot create ", impl_->tmp_path, " (does the folder exist and is it writable?)"));
  try {
    hid_t root = impl_->file.get();
    h5::write_string_attr(root, "format", "llm-logits");
    h5::write_int_attr(root, "version", impl_->version);
    h5::write_string_attr(root, "model", info.model);
    h5::write_int_attr(root, "vocab_size", info.vocab_size);
    h5::write_string_attr(root, "dtype", to_string(info.dtype));
    h5::write_string_attr(root, "producer", info.producer);
    if (info.top_k > 0) h5::write_int_attr(root, "top_k", info.top_k);
    if (impl_->version == 3) {
      impl_->create_v3(options.compression);
    } else {
      impl_->requests = h5::group(H5Gcreate2(root, "requests", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      if (!impl_->requests.valid()) throw std::runtime_error("cannot create group /requests");
    }
    H5Fflush(root, H5F_SCOPE_LOCAL);
  } catch (const std::exception& e) {
    impl_->close_datasets();
    impl_->requests.reset();
    impl_->file.reset();
    std::remove(impl_->tmp_path.c_str());
    throw fail(e.what());
  }
}

LogitsWriter::~LogitsWriter() {
  if (!impl_ || impl_->closed) return;
  // Abandoned (an exception, an aborted run): close the handles and leave nothing behind.
  std::lock_guard lock(h5::mutex());
  impl_->close_datasets();
  impl_->requests.reset();
  impl_->file.reset();
  std::remove(impl_->tmp_path.c_str());
}

namespace {
constexpr size_t kMaxBatchBytes = 4u << 20;  // version 3: a batch this large is appended before a flush is due
}  // namespace

void LogitsWriter::Impl::write_v3(const RequestLogits& r) {
  if (!seen.insert(r.id).second) throw std::invalid_argument("duplicate request id (already written)");
  const auto k = static_cast<size_t>(info.top_k);
  const int64_t row[kIndexColumns] = {
      n_id_bytes,  static_cast<int64_t>(r.id.size()),          n_prompt,
      static_cast<int64_t>(r.prompt_tokens.size()),            n_steps,
      static_cast<int64_t>(r.tokens.size()),                   n_text_bytes,
      static_cast<int64_t>(r.prompt_text.size()),              r.unmapped};
  batch.index.insert(batch.index.end(), row, row + kIndexColumns);
  batch.ids += r.id;
  batch.text += r.prompt_text;
  batch.prompt.insert(batch.prompt.end(), r.prompt_tokens.begin(), r.prompt_tokens.end());
  batch.tokens.insert(batch.tokens.end(), r.tokens.begin(), r.tokens.end());
  batch.token_lps.insert(batch.token_lps.end(), r.token_logprobs.begin(), r.token_logprobs.end());
  batch.top_ids.insert(batch.top_ids.end(), r.top_ids.begin(), r.top_ids.begin() + r.tokens.size() * k);
  batch.top_lps.insert(batch.top_lps.end(), r.top_logprobs.begin(), r.top_logprobs.begin() + r.tokens.size() * k);
  n_id_bytes += static_cast<int64_t>(r.id.size());
  n_text_bytes += static_cast<int64_t>(r.prompt_text.size());
  n_prompt += static_cast<int64_t>(r.prompt_tokens.size());
  n_steps += static_cast<int64_t>(r.tokens.size());
}

void LogitsWriter::write(const RequestLogits& r) {
  const bool v3 = impl_->version == 3;
  const std::string obj = v3 ? "request " + r.id : "/requests/" + r.id;
  auto fail = [&](const std::string& what) {
    return LogitsFileError(cat("logits file ", path_, ": ", obj, ": ", what));
  };
  if (impl_->closed) throw fail("write after close()");
  if (r.id.empty() || r.id.find('/') != std::string::npos || r.id == "." || r.id == "..")
    throw fail("request id must be a non-empty name without '/'");
  const int vocab = impl_->info.vocab_size;
  const int k = impl_->info.top_k;
  const size_t n = static_cast<size_t>(r.n_steps());
  if (k > 0) {
    if (r.token_logprobs.size() != n || r.top_ids.size() != n * k || r.top_logprobs.size() != n * k)
      throw fail(cat("top-K arrays hold ", r.token_logprobs.size(), " / ", r.top_ids.size(), " / ", r.top_logprobs.size(),
                     " values, expected n_steps ", n, " / n_steps x top_k ", n * k, " / ", n * k));
  } else if (r.logits.size() != n * vocab)
    throw fail(cat("logits has ", r.logits.size(), " values, expected n_steps ", r.n_steps(), " x vocab_size ", vocab, " = ", static_cast<size_t>(r.n_steps()) * vocab));
  // Version 3 stores no hash: a reader computes it from the prompt tokens, which is what it is checked against.
  const std::string sha = !v3 || !r.prompt_sha256.empty() ? prompt_sha256(r.prompt_tokens) : std::string();
  if (!r.prompt_sha256.empty() && r.prompt_sha256 != sha)
    throw fail(cat("prompt_sha256 ", r.prompt_sha256, " does not match the prompt tokens (their hash is ", sha, ")"));

  std::lock_guard lock(h5::mutex());
  const auto now = std::chrono::steady_clock::now();
  const bool flush_due =
      std::chrono::duration<double>(now - impl_->last_flush).count() >= impl_->options.flush_interval_s;
  if (v3) {
    try {
      impl_->write_v3(r);
      if (flush_due || impl_->batch.bytes() >= kMaxBatchBytes) impl_->append_batch();
    } catch (const std::invalid_argument& e) {
      throw fail(e.what());
    } catch (const std::exception& e) {
      throw LogitsFileError(cat("logits file ", path_, ": ", e.what()));
    }
  } else {
    hid_t requests = impl_->requests.get();
    if (H5Lexists(requests, r.id.c_str(), H5P_DEFAULT) > 0) throw fail("duplicate request id (already written)");
    try {
      Handle g = h5::group(H5Gcreate2(requests, r.id.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      if (!g.valid()) throw std::runtime_error("cannot create the group");
      h5::write_string_attr(g.get(), "prompt_sha256", sha);
      if (!r.prompt_text.empty()) h5::write_string_attr(g.get(), "prompt_text", r.prompt_text);
      write_dataset(g.get(), "prompt_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, {r.prompt_tokens.size()},
                    r.prompt_tokens.data(), 0);
      write_dataset(g.get(), "tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, {r.tokens.size()}, r.tokens.data(), 0);
      const std::vector<hsize_t> dims = {static_cast<hsize_t>(r.n_steps()), static_cast<hsize_t>(vocab)};
      if (k > 0) {
        h5::write_int_attr(g.get(), "unmapped", r.unmapped);
        const std::vector<hsize_t> kdims = {static_cast<hsize_t>(n), static_cast<hsize_t>(k)};
        write_dataset(g.get(), "token_logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {n}, r.token_logprobs.data(), 0);
        write_dataset(g.get(), "top_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, kdims, r.top_ids.data(), impl_->options.compression);
        write_dataset(g.get(), "top_logprobs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, kdims, r.top_logprobs.data(),
                      impl_->options.compression);
      } else if (impl_->info.dtype == LogitsDType::kFloat16) {
        std::vector<uint16_t> half(r.logits.size());
        std::transform(r.logits.begin(), r.logits.end(), half.begin(), float_to_half);
        Handle f16 = h5::float16_type();  // memory and file type alike: HDF5 copies the bits unconverted
        write_dataset(g.get(), "logits", f16.get(), f16.get(), dims, half.data(), impl_->options.compression);
      } else {
        write_dataset(g.get(), "logits", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, r.logits.data(),
                      impl_->options.compression);
      }
    } catch (const std::exception& e) {
      throw fail(e.what());
    }
  }
  if (flush_due) {
    if (H5Fflush(impl_->file.get(), H5F_SCOPE_LOCAL) < 0) throw fail("flush failed (disk full?)");
    impl_->last_flush = now;
  }
}

void LogitsWriter::close() {
  if (impl_->closed) return;
  std::lock_guard lock(h5::mutex());
  std::string append_error;
  try {
    impl_->append_batch();
  } catch (const std::exception& e) {
    append_error = e.what();
  }
  impl_->close_datasets();
  impl_->requests.reset();
  herr_t rc = H5Fclose(impl_->file.release());
  impl_->closed = true;
  if (!append_error.empty() || rc < 0) {
    std::remove(impl_->tmp_path.c_str());
    throw LogitsFileError(cat("logits file ", path_, ": closing ", impl_->tmp_path, " failed",
                              append_error.empty() ? "" : ": " + append_error));
  }
  std::error_code ec;
  fs::rename(impl_->tmp_path, path_, ec);
  if (ec)
    throw LogitsFileError(cat("logits file ", path_, ": cannot rename ", impl_->tmp_path, " to it: ", ec.message()));
}

}  // namespace accuracy
