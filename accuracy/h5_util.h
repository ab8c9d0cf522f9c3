// Small RAII and attribute helpers over the HDF5 C API, private to accuracy/ (logits_file.cc).
// All HDF5 calls go through one process-wide mutex: Debian's libhdf5 is built without thread safety, and a
// writer (loadgen's recorder thread) may run beside a reader.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace accuracy::h5 {

/// The lock every public entry point of logits_file.cc holds while it talks to HDF5.
std::mutex& mutex();

/// Turns off HDF5's automatic error-stack printing (our exceptions say what went wrong).
void silence_errors();

/// Owns one hid_t and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t get() const { return id_; }
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

inline Handle file(hid_t id) { return {id, H5Fclose}; }
inline Handle group(hid_t id) { return {id, H5Gclose}; }
inline Handle dataset(hid_t id) { return {id, H5Dclose}; }
inline Handle space(hid_t id) { return {id, H5Sclose}; }
inline Handle type(hid_t id) { return {id, H5Tclose}; }
inline Handle attr(hid_t id) { return {id, H5Aclose}; }
inline Handle plist(hid_t id) { return {id, H5Pclose}; }

/// IEEE binary16 little-endian, defined the way h5py/numpy do (HDF5 1.10 has no predefined half type).
Handle float16_type();

/// Scalar attributes. Strings are written as variable-length UTF-8 (like the reference files, which h5py
/// wrote); reading accepts variable- or fixed-length. Readers return nullopt when the attribute is absent
/// and throw std::runtime_error (message without the file name) when it has the wrong kind.
void write_string_attr(hid_t obj, const char* name, const std::string& value);
void write_int_attr(hid_t obj, const char* name, int64_t value);
std::optional<std::string> read_string_attr(hid_t obj, const char* name);
std::optional<int64_t> read_int_attr(hid_t obj, const char* name);

/// A dataset `name` of shape `dims` under `parent` (gzip `compression` 0-9, chunked one row at a time).
/// Throws std::runtime_error naming it.
void write_dataset(hid_t parent, const char* name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
                   const void* data, int compression);
/// Opens `name` under `g` as a dataset of class `cls` (H5T_INTEGER / H5T_FLOAT) and rank `rank`; fills `dims`.
/// Throws std::runtime_error "<obj>/<name>: ..." when it is missing or of another kind.
Handle open_dataset(hid_t g, const std::string& obj, const char* name, H5T_class_t cls, int rank,
                    std::vector<hsize_t>& dims);
/// A whole dataset read as `mem_type` into `T` values (rank `rank`; `dims` filled).
template <typename T>
std::vector<T> read_dataset(hid_t g, const std::string& obj, const char* name, H5T_class_t cls, int rank,
                            hid_t mem_type, std::vector<hsize_t>& dims);

template <typename T>
std::vector<T> read_dataset(hid_t g, const std::string& obj, const char* name, H5T_class_t cls, int rank,
                            hid_t mem_type, std::vector<hsize_t>& dims) {
  Handle ds = open_dataset(g, obj, name, cls, rank, dims);
  size_t n = 1;
  for (hsize_t d : dims) n *= static_cast<size_t>(d);
  std::vector<T> out(n);
  if (n > 0 && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw std::runtime_error(obj + "/" + name + ": read failed");
  return out;
}

}  // namespace accuracy::h5
