// LogitsWriter / LogitsReader over the HDF5 C API, in the layout of docs/formats.md and ../shared/references:
//   /                 attrs format="llm-logits" (vlen UTF-8), version=1|2|3 (int64), model, vocab_size (int64), dtype,
//                     producer, top_k (int64, versions 2 and 3)
//   /requests/<id>/   attrs prompt_sha256, prompt_text (optional), unmapped (version 2)
//       prompt_tokens int32 [n_prompt];  tokens int32 [n_steps];  logits f32|f16 [n_steps, vocab]   (version 1)
//       or token_logprobs f32 [n_steps], top_ids int32 [n_steps, K], top_logprobs f32 [n_steps, K]  (version 2)
//   version 3 (top-K): no /requests; every request's rows appended to chunked datasets at the root,
//       index int64 [n_requests, 9] (kIndexColumns), ids uint8, prompt_text uint8, prompt_tokens int32,
//       tokens int32, token_logprobs f32 [total steps], top_ids int32, top_logprobs f32 [total steps, K]
// Versions 1 and 2 are written request by request as they come; version 3 keeps a batch in memory and appends
// it when a flush is due (a group and five datasets per request cost ~100 us of HDF5 calls; an append of a
// batch costs that once). All go into "<path>.tmp", flushed at most every WriterOptions::flush_interval_s (a
// killed run's temporary file holds the requests up to the last flush), renamed on close().
#include "accuracy/logits_file.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "accuracy/float16.h"
#include "common/enum_names.h"
#include "accuracy/h5_util.h"
#include "accuracy/sha256.h"
#include "accuracy/text.h"

namespace accuracy {
namespace {

namespace fs = std::filesystem;
using h5::Handle;
using h5::open_dataset;
using h5::write_dataset;

// "[12, 32000]"
std::string shape_str(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Numbers in numeric order first ("2" < "10"), then any other ids in byte order.
bool id_less(const std::string& a, const std::string& b) {
  bool na = all_digits(a), nb = all_digits(b);
  if (na != nb) return na;
  if (!na) return a < b;
  auto strip = [](const std::string& s) { size_t i = s.find_first_not_of('0'); return i == std::string::npos ? std::string() : s.substr(i); };
  std::string sa = strip(a), sb = strip(b);
  if (sa.size() != sb.size()) return sa.size() < sb.size();
  return sa != sb ? sa < sb : a < b;
}

// Version 3's /index: one row per request, these columns (also the dataset's "columns" attribute). Offsets
// and lengths count elements of the dataset named (ids and prompt_text: bytes; steps: rows of tokens,
// token_logprobs, top_ids and top_logprobs alike).
enum IndexColumn : int { kIdOffset, kIdLength, kPromptOffset, kPromptLength, kStepOffset, kStepCount, kTextOffset,
                         kTextLength, kUnmappedCount, kIndexColumns };
constexpr const char* kIndexColumnNames =
    "id_offset,id_length,prompt_offset,n_prompt,step_offset,n_steps,text_offset,text_length,unmapped";

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

std::string prompt_sha256(std::span<const int32_t> tokens) {
  // The hash is over little-endian int32 bytes; serialise explicitly so a big-endian host agrees.
  std::vector<std::byte> bytes(tokens.size() * 4);
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto u = static_cast<uint32_t>(tokens[i]);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<std::byte>((u >> (8 * b)) & 0xff);
  }
  return sha256_hex(bytes);
}

// ---------------------------------------------------------------------------------------------- writer

namespace {
constexpr auto kLogitsDTypeNames =
    common::enum_names<LogitsDType>({{LogitsDType::kFloat32, "float32"}, {LogitsDType::kFloat16, "float16"}});
}  // namespace

const char* to_string(LogitsDType d) { return kLogitsDTypeNames.name(d); }
LogitsDType parse_logits_dtype(const std::string& text, const std::string& what) {
  return kLogitsDTypeNames.parse(text, what);
}

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

// ---------------------------------------------------------------------------------------------- reader

struct LogitsReader::Impl {
  std::string path;
  FileInfo info;
  Handle file;
  std::vector<std::string> ids;  // sorted with id_less

  // Version 3: the datasets (dims as read at open), the index, and each id's row in it.
  struct Dataset {
    Handle ds;
    std::vector<hsize_t> dims;
  };
  Dataset prompt, tokens, token_lps, top_ids, top_lps, text;
  std::vector<int64_t> index;
  std::unordered_map<std::string, size_t> row_of;

  LogitsFileError error(const std::string& what) const {
    return LogitsFileError(cat("logits file ", path, ": ", what));
  }

  void open_v3();
  RequestLogits read_v3(const std::string& id) const;
};

namespace {

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

std::vector<int32_t> read_int_dataset(hid_t g, const std::string& obj, const char* name) {
  std::vector<hsize_t> dims;
  Handle ds = open_dataset(g, obj, name, H5T_INTEGER, 1, dims);
  std::vector<int32_t> out(dims[0]);
  if (!out.empty() && H5Dread(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw std::runtime_error(cat(obj, "/", name, ": read failed"));
  return out;
}

// A version-2 request's top-K datasets, shape-checked against its tokens.
void read_top_k(hid_t g, const std::string& obj, int k, RequestLogits& r) {
  std::vector<hsize_t> dims;
  const hsize_t n = r.tokens.size();
  r.token_logprobs = h5::read_dataset<float>(g, obj, "token_logprobs", H5T_FLOAT, 1, H5T_NATIVE_FLOAT, dims);
  if (dims[0] != n) throw std::runtime_error(cat(obj, "/token_logprobs: shape ", shape_str(dims), " does not match [n_steps] = [", n, "]"));
  const std::vector<hsize_t> want = {n, static_cast<hsize_t>(k)};
  r.top_ids = h5::read_dataset<int32_t>(g, obj, "top_ids", H5T_INTEGER, 2, H5T_NATIVE_INT32, dims);
  if (dims != want) throw std::runtime_error(cat(obj, "/top_ids: shape ", shape_str(dims), " does not match [n_steps, top_k] = ", shape_str(want)));
  r.top_logprobs = h5::read_dataset<float>(g, obj, "top_logprobs", H5T_FLOAT, 2, H5T_NATIVE_FLOAT, dims);
  if (dims != want)
    throw std::runtime_error(cat(obj, "/top_logprobs: shape ", shape_str(dims), " does not match [n_steps, top_k] = ", shape_str(want)));
  r.unmapped = h5::read_int_attr(g, "unmapped").value_or(0);
}

// Rows [first, first + n) of a version-3 dataset (all its columns), as `mem_type`.
template <typename T>
std::vector<T> read_rows(const std::string& path, const char* name, const hid_t ds, const std::vector<hsize_t>& dims,
                         hsize_t first, hsize_t n, hid_t mem_type) {
  const hsize_t width = dims.size() == 2 ? dims[1] : 1;
  std::vector<T> out(static_cast<size_t>(n * width));
  if (n == 0) return out;
  Handle file_space = h5::space(H5Dget_space(ds));
  const hsize_t start[2] = {first, 0};
  const hsize_t count[2] = {n, width};
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
  Handle mem_space = h5::space(H5Screate_simple(static_cast<int>(dims.size()), count, nullptr));
  if (H5Dread(ds, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out.data()) < 0)
    throw LogitsFileError(cat("logits file ", path, ": /", name, ": read failed (rows ", first, "-", first + n, ")"));
  return out;
}

}  // namespace

void LogitsReader::Impl::open_v3() {
  hid_t root = file.get();
  auto open = [&](const char* name, H5T_class_t cls, int rank, Dataset& d) {
    try {
      d.ds = open_dataset(root, "", name, cls, rank, d.dims);
    } catch (const std::exception& e) {
      throw error(e.what());
    }
  };
  Dataset index_ds, ids_ds;
  open("index", H5T_INTEGER, 2, index_ds);
  open("ids", H5T_INTEGER, 1, ids_ds);
  open("prompt_text", H5T_INTEGER, 1, text);
  open("prompt_tokens", H5T_INTEGER, 1, prompt);
  open("tokens", H5T_INTEGER, 1, tokens);
  open("token_logprobs", H5T_FLOAT, 1, token_lps);
  open("top_ids", H5T_INTEGER, 2, top_ids);
  open("top_logprobs", H5T_FLOAT, 2, top_lps);
  if (index_ds.dims[1] != kIndexColumns)
    throw error(cat("/index: shape ", shape_str(index_ds.dims), " does not have the ", int(kIndexColumns), " columns ",
                    kIndexColumnNames));
  const auto k = static_cast<hsize_t>(info.top_k);
  for (const auto& [name, d] : {std::pair{"top_ids", &top_ids}, std::pair{"top_logprobs", &top_lps}})
    if (d->dims[1] != k) throw error(cat("/", name, ": shape ", shape_str(d->dims), " is not [steps, top_k = ", k, "]"));
  index = read_rows<int64_t>(path, "index", index_ds.ds.get(), index_ds.dims, 0, index_ds.dims[0], H5T_NATIVE_INT64);
  const auto id_bytes = read_rows<char>(path, "ids", ids_ds.ds.get(), ids_ds.dims, 0, ids_ds.dims[0], H5T_NATIVE_UINT8);
  // Every row's ranges inside its datasets, checked once here, so read() can trust them.
  auto check = [&](size_t row, int offset_col, int length_col, const char* name, hsize_t extent) {
    const int64_t off = index[row * kIndexColumns + offset_col], len = index[row * kIndexColumns + length_col];
    if (off < 0 || len < 0 || static_cast<hsize_t>(off) + static_cast<hsize_t>(len) > extent)
      throw error(cat("/index row ", row, ": ", name, " [", off, ", ", off + len, ") is outside its ", extent, " rows"));
  };
  const size_t n = index_ds.dims[0];
  ids.reserve(n);
  for (size_t row = 0; row < n; ++row) {
    check(row, kIdOffset, kIdLength, "/ids", ids_ds.dims[0]);
    check(row, kPromptOffset, kPromptLength, "/prompt_tokens", prompt.dims[0]);
    check(row, kTextOffset, kTextLength, "/prompt_text", text.dims[0]);
    for (const Dataset* d : {&tokens, &token_lps, &top_ids, &top_lps})
      check(row, kStepOffset, kStepCount, d == &tokens ? "/tokens" : d == &token_lps ? "/token_logprobs"
                                                       : d == &top_ids ? "/top_ids" : "/top_logprobs", d->dims[0]);
    std::string id(id_bytes.data() + index[row * kIndexColumns + kIdOffset],
                   static_cast<size_t>(index[row * kIndexColumns + kIdLength]));
    if (!row_of.emplace(id, row).second) throw error(cat("/index row ", row, ": request id '", id, "' appears twice"));
    ids.push_back(std::move(id));
  }
}

RequestLogits LogitsReader::Impl::read_v3(const std::string& id) const {
  const size_t row = row_of.at(id);
  const int64_t* e = index.data() + row * kIndexColumns;
  auto u = [](int64_t v) { return static_cast<hsize_t>(v); };
  RequestLogits r;
  r.id = id;
  r.prompt_tokens = read_rows<int32_t>(path, "prompt_tokens", prompt.ds.get(), prompt.dims, u(e[kPromptOffset]),
                                       u(e[kPromptLength]), H5T_NATIVE_INT32);
  const auto text_bytes = read_rows<char>(path, "prompt_text", text.ds.get(), text.dims, u(e[kTextOffset]),
                                          u(e[kTextLength]), H5T_NATIVE_UINT8);
  r.prompt_text.assign(text_bytes.begin(), text_bytes.end());
  const hsize_t first = u(e[kStepOffset]), n = u(e[kStepCount]);
  r.tokens = read_rows<int32_t>(path, "tokens", tokens.ds.get(), tokens.dims, first, n, H5T_NATIVE_INT32);
  r.token_logprobs = read_rows<float>(path, "token_logprobs", token_lps.ds.get(), token_lps.dims, first, n, H5T_NATIVE_FLOAT);
  r.top_ids = read_rows<int32_t>(path, "top_ids", top_ids.ds.get(), top_ids.dims, first, n, H5T_NATIVE_INT32);
  r.top_logprobs = read_rows<float>(path, "top_logprobs", top_lps.ds.get(), top_lps.dims, first, n, H5T_NATIVE_FLOAT);
  r.unmapped = e[kUnmappedCount];
  r.prompt_sha256 = prompt_sha256(r.prompt_tokens);  // not stored: the writer checked it against these tokens
  return r;
}

LogitsReader::LogitsReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw impl_->error("no such file");
  if (fs::is_directory(path, ec)) throw impl_->error("is a directory, not a file");

  std::lock_guard lock(h5::mutex());
  h5::silence_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw impl_->error("not an HDF5 file (so not an llm-logits file)");
  impl_->file = h5::file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!impl_->file.valid()) throw impl_->error("cannot open (unreadable or damaged HDF5 file)");
  hid_t root = impl_->file.get();
  try {
    auto format = h5::read_string_attr(root, "format");
    if (!format) throw impl_->error("not an llm-logits file (the root has no 'format' attribute)");
    if (*format != "llm-logits")
      throw impl_->error(cat("not an llm-logits file (format attribute is '", *format, "')"));
    auto version = h5::read_int_attr(root, "version");
    if (!version) throw impl_->error("/: missing attribute 'version'");
    if (*version < 1 || *version > 3)
      throw impl_->error(cat("/: version ", *version, " is not supported (this reader knows 1, 2 and 3)"));
    impl_->info.version = static_cast<int>(*version);
    if (*version >= 2) {
      auto k = h5::read_int_attr(root, "top_k");
      if (!k) throw impl_->error(cat("/: version ", *version, " without attribute 'top_k'"));
      if (*k < (*version == 3 ? 1 : 0) || *k > (1 << 20)) throw impl_->error(cat("/: top_k ", *k, " is not valid"));
      impl_->info.top_k = static_cast<int>(*k);
    }
    auto vocab = h5::read_int_attr(root, "vocab_size");
    if (!vocab) throw impl_->error("/: missing attribute 'vocab_size'");
    if (*vocab <= 0 || *vocab > (1 << 30)) throw impl_->error(cat("/: vocab_size ", *vocab, " is not valid"));
    impl_->info.vocab_size = static_cast<int>(*vocab);
    impl_->info.model = h5::read_string_attr(root, "model").value_or("");
    impl_->info.dtype = parse_logits_dtype(h5::read_string_attr(root, "dtype").value_or("float32"), "/: attribute dtype");
    impl_->info.producer = h5::read_string_attr(root, "producer").value_or("");
  } catch (const LogitsFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw impl_->error(std::string("/: ") + e.what());
  }
  if (impl_->info.version == 3) {
    impl_->open_v3();
    std::sort(impl_->ids.begin(), impl_->ids.end(), id_less);
    return;
  }
  if (H5Lexists(root, "requests", H5P_DEFAULT) <= 0) throw impl_->error("/requests: missing group");
  Handle req = h5::group(H5Gopen2(root, "requests", H5P_DEFAULT));
  if (!req.valid()) throw impl_->error("/requests: not a group");
  H5Literate(req.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &impl_->ids);
  std::sort(impl_->ids.begin(), impl_->ids.end(), id_less);
}

LogitsReader::~LogitsReader() {
  std::lock_guard lock(h5::mutex());
  for (Impl::Dataset* d : {&impl_->prompt, &impl_->tokens, &impl_->token_lps, &impl_->top_ids, &impl_->top_lps, &impl_->text})
    d->ds.reset();
  impl_->file.reset();
}

const FileInfo& LogitsReader::info() const { return impl_->info; }
std::vector<std::string> LogitsReader::ids() const { return impl_->ids; }
const std::string& LogitsReader::path() const { return impl_->path; }

bool LogitsReader::has(const std::string& id) const {
  return std::binary_search(impl_->ids.begin(), impl_->ids.end(), id, id_less);
}

RequestLogits LogitsReader::read(const std::string& id) const {
  const std::string obj = "/requests/" + id;
  if (!has(id)) throw impl_->error(obj + ": no such request");
  std::lock_guard lock(h5::mutex());
  if (impl_->info.version == 3) return impl_->read_v3(id);
  RequestLogits r;
  r.id = id;
  try {
    Handle g = h5::group(H5Gopen2(impl_->file.get(), obj.c_str(), H5P_DEFAULT));
    if (!g.valid()) throw std::runtime_error(obj + ": not a group");
    r.prompt_tokens = read_int_dataset(g.get(), obj, "prompt_tokens");
    r.tokens = read_int_dataset(g.get(), obj, "tokens");
    r.prompt_text = h5::read_string_attr(g.get(), "prompt_text").value_or("");
    // A file without the hash is still comparable: fall back to hashing the stored tokens.
    r.prompt_sha256 = h5::read_string_attr(g.get(), "prompt_sha256").value_or(prompt_sha256(r.prompt_tokens));

    std::vector<hsize_t> dims;
    if (impl_->info.top_k > 0) {
      read_top_k(g.get(), obj, impl_->info.top_k, r);
      return r;
    }
    Handle ds = open_dataset(g.get(), obj, "logits", H5T_FLOAT, 2, dims);
    const std::vector<hsize_t> want = {r.tokens.size(), static_cast<hsize_t>(impl_->info.vocab_size)};
    if (dims != want)
      throw std::runtime_error(cat(obj, "/logits: shape ", shape_str(dims), " does not match [n_steps, vocab_size] = ", shape_str(want)));
    r.logits.resize(dims[0] * dims[1]);
    if (!r.logits.empty()) {
      Handle ft = h5::type(H5Dget_type(ds.get()));
      herr_t rc;
      if (H5Tget_size(ft.get()) == 2) {  // float16: read the bits, widen them ourselves (exact)
        std::vector<uint16_t> half(r.logits.size());
        Handle f16 = h5::float16_type();
        rc = H5Dread(ds.get(), f16.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, half.data());
        std::transform(half.begin(), half.end(), r.logits.begin(), half_to_float);
      } else {
        rc = H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, r.logits.data());
      }
      if (rc < 0) throw std::runtime_error(obj + "/logits: read failed");
    }
  } catch (const LogitsFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw impl_->error(e.what());
  }
  return r;
}

}  // namespace accuracy
