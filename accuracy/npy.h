// Our own small .npy reader and writer (NumPy's format, versions 1-3): a magic "\x93NUMPY", the version, a
// header length (uint16 in v1, uint32 in v2/v3), a Python dict literal {'descr': '<f4', 'fortran_order': False,
// 'shape': (R, C), } padded with spaces to a multiple of 64 and ended by '\n', then the data. The reader takes
// little-endian float32 ('<f4') and float16 ('<f2') in C order and returns float32; anything else is an error
// naming the file and the field.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace accuracy {

struct NpyError : std::runtime_error { using std::runtime_error::runtime_error; };

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  ///< C order, widened to float32
};

/// Reads `path`. Throws NpyError "<path>: ..." (not .npy, big-endian, Fortran order, other dtypes, short data).
NpyArray read_npy(const std::string& path);

/// Writes float32 data of `shape` (C order) as a version-1 .npy file. Throws NpyError.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& data);

}  // namespace accuracy
