#include "accuracy/h5_util.h"

#include <algorithm>
#include <stdexcept>

#include "accuracy/text.h"
#include <vector>

namespace accuracy::h5 {

std::mutex& mutex() {
  static std::mutex m;
  return m;
}

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

Handle float16_type() {
  // h5py's recipe: copy IEEE f32 LE, then sign bit 15, exponent bits 10..14, mantissa bits 0..9, 2 bytes, bias 15.
  Handle t = type(H5Tcopy(H5T_IEEE_F32LE));
  if (H5Tset_fields(t.get(), 15, 10, 5, 0, 10) < 0 || H5Tset_size(t.get(), 2) < 0 ||
      H5Tset_ebias(t.get(), 15) < 0)
    throw std::runtime_error("cannot define the HDF5 float16 type");
  return t;
}

void write_string_attr(hid_t obj, const char* name, const std::string& value) {
  Handle t = type(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  Handle s = space(H5Screate(H5S_SCALAR));
  Handle a = attr(H5Acreate2(obj, name, t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  if (!a.valid() || H5Awrite(a.get(), t.get(), &p) < 0)
    throw std::runtime_error(std::string("cannot write attribute ") + name);
}

void write_int_attr(hid_t obj, const char* name, int64_t value) {
  Handle s = space(H5Screate(H5S_SCALAR));
  Handle a = attr(H5Acreate2(obj, name, H5T_STD_I64LE, s.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid() || H5Awrite(a.get(), H5T_NATIVE_INT64, &value) < 0)
    throw std::runtime_error(std::string("cannot write attribute ") + name);
}

std::optional<std::string> read_string_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  Handle a = attr(H5Aopen(obj, name, H5P_DEFAULT));
  Handle ft = type(H5Aget_type(a.get()));
  if (H5Tget_class(ft.get()) != H5T_STRING)
    throw std::runtime_error(std::string("attribute ") + name + " is not a string");
  Handle s = space(H5Aget_space(a.get()));
  if (H5Sget_simple_extent_npoints(s.get()) != 1)
    throw std::runtime_error(std::string("attribute ") + name + " is not a scalar");
  if (H5Tis_variable_str(ft.get()) > 0) {
    Handle mt = type(H5Tcopy(H5T_C_S1));
    H5Tset_size(mt.get(), H5T_VARIABLE);
    H5Tset_cset(mt.get(), H5Tget_cset(ft.get()));
    char* p = nullptr;
    if (H5Aread(a.get(), mt.get(), &p) < 0)
      throw std::runtime_error(std::string("cannot read attribute ") + name);
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  // Fixed length: read the raw bytes and cut at the first NUL (null-terminated or null-padded alike).
  std::vector<char> buf(H5Tget_size(ft.get()) + 1, '\0');
  if (H5Aread(a.get(), ft.get(), buf.data()) < 0)
    throw std::runtime_error(std::string("cannot read attribute ") + name);
  std::string out(buf.data());
  if (H5Tget_strpad(ft.get()) == H5T_STR_SPACEPAD) out.erase(out.find_last_not_of(' ') + 1);
  return out;
}

std::optional<int64_t> read_int_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  Handle a = attr(H5Aopen(obj, name, H5P_DEFAULT));
  Handle ft = type(H5Aget_type(a.get()));
  if (H5Tget_class(ft.get()) != H5T_INTEGER)
    throw std::runtime_error(std::string("attribute ") + name + " is not an integer");
  Handle s = space(H5Aget_space(a.get()));
  if (H5Sget_simple_extent_npoints(s.get()) != 1)
    throw std::runtime_error(std::string("attribute ") + name + " is not a scalar");
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0)
    throw std::runtime_error(std::string("cannot read attribute ") + name);
  return v;
}

void write_dataset(hid_t parent, const char* name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
                   const void* data, int compression) {
  Handle space = h5::space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Handle dcpl = h5::plist(H5Pcreate(H5P_DATASET_CREATE));
  bool empty = std::any_of(dims.begin(), dims.end(), [](hsize_t d) { return d == 0; });
  if (compression > 0 && !empty) {
    // One chunk per step row: a reader that wants step k decompresses only that row.
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compression));
  }
  Handle ds = h5::dataset(H5Dcreate2(parent, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!ds.valid()) throw std::runtime_error(std::string("cannot create dataset ") + name);
  if (!empty && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw std::runtime_error(std::string("cannot write dataset ") + name);
}

Handle open_dataset(hid_t g, const std::string& obj, const char* name, H5T_class_t cls, int rank,
                    std::vector<hsize_t>& dims) {
  if (H5Lexists(g, name, H5P_DEFAULT) <= 0) throw std::runtime_error(cat(obj, "/", name, ": missing dataset"));
  Handle ds = h5::dataset(H5Dopen2(g, name, H5P_DEFAULT));
  if (!ds.valid()) throw std::runtime_error(cat(obj, "/", name, ": not a dataset"));
  Handle t = h5::type(H5Dget_type(ds.get()));
  if (H5Tget_class(t.get()) != cls)
    throw std::runtime_error(cat(obj, "/", name, ": expected ", cls == H5T_INTEGER ? "integer" : "float", " data"));
  Handle s = h5::space(H5Dget_space(ds.get()));
  int nd = H5Sget_simple_extent_ndims(s.get());
  if (nd != rank) throw std::runtime_error(cat(obj, "/", name, ": has ", nd, " dimensions, expected ", rank));
  dims.assign(rank, 0);
  H5Sget_simple_extent_dims(s.get(), dims.data(), nullptr);
  return ds;
}

}  // namespace accuracy::h5
