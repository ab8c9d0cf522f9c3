// LogitsReader (logits_file.h; the layout is in logits_file.cc): versions 1 and 2 request by request from their
// groups, version 3 through its index; every shape checked against what the file says.
#include "accuracy/logits_file.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <unordered_map>

#include "accuracy/float16.h"
#include "accuracy/h5_util.h"
#include "accuracy/logits_v3_index.h"
#include "accuracy/text.h"

namespace accuracy {
namespace {

namespace fs = std::filesystem;
using h5::Handle;
using h5::open_dataset;

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

using namespace v3;

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
