// LogitsWriter / LogitsReader over the HDF5 C API, in the layout of docs/formats.md and ../shared/references:
//   /                 attrs format="llm-logits" (vlen UTF-8), version=1|2 (int64), model, vocab_size (int64), dtype,
//                     producer, top_k (int64, version 2)
//   /requests/<id>/   attrs prompt_sha256, prompt_text (optional), unmapped (version 2)
//       prompt_tokens int32 [n_prompt];  tokens int32 [n_steps];  logits f32|f16 [n_steps, vocab]   (version 1)
//       or token_logprobs f32 [n_steps], top_ids int32 [n_steps, K], top_logprobs f32 [n_steps, K]  (version 2)
// The writer writes each request as it comes (nothing is held in memory) into "<path>.tmp", flushes it at most
// every WriterOptions::flush_interval_s (a killed run's temporary file holds the requests up to the last flush),
// and renames it on close().
#include "accuracy/logits_file.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <stdexcept>

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
  Handle file;
  Handle requests;
  bool closed = false;
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();
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
  impl_->tmp_path = path + ".tmp";
  impl_->info = info;
  impl_->options = options;

  std::lock_guard lock(h5::mutex());
  h5::silence_errors();
  impl_->file = h5::file(H5Fcreate(impl_->tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!impl_->file.valid())
    throw LogitsFileError(cat("logits file ", path, ": cannot create ", impl_->tmp_path, " (does the folder exist and is it writable?)"));
  try {
    hid_t root = impl_->file.get();
    h5::write_string_attr(root, "format", "llm-logits");
    h5::write_int_attr(root, "version", info.top_k > 0 ? 2 : 1);  // a dense file stays readable by version-1 readers
    h5::write_string_attr(root, "model", info.model);
    h5::write_int_attr(root, "vocab_size", info.vocab_size);
    h5::write_string_attr(root, "dtype", to_string(info.dtype));
    h5::write_string_attr(root, "producer", info.producer);
    if (info.top_k > 0) h5::write_int_attr(root, "top_k", info.top_k);
    impl_->requests = h5::group(H5Gcreate2(root, "requests", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!impl_->requests.valid()) throw std::runtime_error("cannot create group /requests");
    H5Fflush(root, H5F_SCOPE_LOCAL);
  } catch (const std::exception& e) {
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
  impl_->requests.reset();
  impl_->file.reset();
  std::remove(impl_->tmp_path.c_str());
}

void LogitsWriter::write(const RequestLogits& r) {
  const std::string obj = "/requests/" + r.id;
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
  const std::string sha = prompt_sha256(r.prompt_tokens);
  if (!r.prompt_sha256.empty() && r.prompt_sha256 != sha)
    throw fail(cat("prompt_sha256 ", r.prompt_sha256, " does not match the prompt tokens (their hash is ", sha, ")"));

  std::lock_guard lock(h5::mutex());
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
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - impl_->last_flush).count() >= impl_->options.flush_interval_s) {
    if (H5Fflush(impl_->file.get(), H5F_SCOPE_LOCAL) < 0) throw fail("flush failed (disk full?)");
    impl_->last_flush = now;
  }
}

void LogitsWriter::close() {
  if (impl_->closed) return;
  std::lock_guard lock(h5::mutex());
  impl_->requests.reset();
  herr_t rc = H5Fclose(impl_->file.release());
  impl_->closed = true;
  if (rc < 0) {
    std::remove(impl_->tmp_path.c_str());
    throw LogitsFileError(cat("logits file ", path_, ": closing ", impl_->tmp_path, " failed"));
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

  LogitsFileError error(const std::string& what) const {
    return LogitsFileError(cat("logits file ", path, ": ", what));
  }
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

}  // namespace

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
    if (*version != 1 && *version != 2)
      throw impl_->error(cat("/: version ", *version, " is not supported (this reader knows 1 and 2)"));
    if (*version == 2) {
      auto k = h5::read_int_attr(root, "top_k");
      if (!k) throw impl_->error("/: version 2 without attribute 'top_k'");
      if (*k < 0 || *k > (1 << 20)) throw impl_->error(cat("/: top_k ", *k, " is not valid"));
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
  if (H5Lexists(root, "requests", H5P_DEFAULT) <= 0) throw impl_->error("/requests: missing group");
  Handle req = h5::group(H5Gopen2(root, "requests", H5P_DEFAULT));
  if (!req.valid()) throw impl_->error("/requests: not a group");
  H5Literate(req.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &impl_->ids);
  std::sort(impl_->ids.begin(), impl_->ids.end(), id_less);
}

LogitsReader::~LogitsReader() {
  std::lock_guard lock(h5::mutex());
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
