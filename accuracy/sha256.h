// SHA-256 (FIPS 180-4), small and dependency-free: the logits file keys each prompt by the hash of its
// int32 token ids so two runs can tell they saw the same context.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace accuracy {

/// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::span<const std::byte> bytes);

}  // namespace accuracy
