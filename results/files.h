// Whole-file reads and crash-safe writes for the result files.
#pragma once

#include <filesystem>
#include <string>

namespace results {

/// Reads a whole file; throws std::runtime_error naming it when it cannot.
std::string read_text_file(const std::filesystem::path& path);

/// Writes `text` to `path` through `path`.tmp and a rename, so a crash never leaves half a file under the
/// final name. Throws std::runtime_error naming the file.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace results
