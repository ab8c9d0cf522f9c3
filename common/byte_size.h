// Sizes in bytes as users write them, with one meaning in every program (loadgen --kv-memory, llm-serve
// --kv-memory, config files): KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB powers of 1000 (as disk
// and memory vendors and the SI mean them); K, M, G, T alone are binary (what `free -h`, `ls -h` and Linux
// mean); B or no unit is bytes. Fractions are allowed ("1.5GiB"); a space before the unit too.
#pragma once

#include <cstdint>
#include <string>

namespace common {

/// One line for --help: the units and their meaning.
inline constexpr const char* kByteSizeUnits =
    "KiB/MiB/GiB/TiB = 2^10n bytes, KB/MB/GB/TB = 10^3n, K/M/G/T = KiB/MiB/GiB/TiB";

/// "536870912", "512MiB", "2GB", "1.5 GiB" -> bytes. Throws std::invalid_argument "<what>: ..." naming the
/// text and the units for a malformed size, an unknown unit, or a size that is not > 0 or does not fit.
int64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace common
