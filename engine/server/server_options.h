// llm-serve's settings: the engine options loadgen takes (--model, --tokenizer, --batch-size, ...), the
// server's own (--host, --port, --max-waiting, ...), and a YAML/JSON --config file with the same keys;
// the command line wins over the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "http_server.h"

namespace server {

struct ServeSettings {
  engine::EngineConfig engine;
  ServerOptions server;
};

/// Parses argv. Returns nullopt when the process should exit now (--help, or a bad argument: the message
/// is printed and *exit_code set).
std::optional<ServeSettings> parse_serve_command_line(int argc, const char* const* argv, int* exit_code);

/// Applies a YAML or JSON config file (keys as the long options, '-' or '_', optionally under "engine:" /
/// "server:"). Throws std::runtime_error naming the file and the key for a bad value.
void apply_config_file(const std::string& path, ServeSettings& settings);

/// One line with the effective settings (logged at start-up).
std::string describe(const ServeSettings& s);

}  // namespace server
