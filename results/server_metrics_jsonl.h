// server_metrics.jsonl (docs/formats.md): one JSON object per scrape of the server's /metrics.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "results/server_metrics.h"

namespace results {

/// Writes the file (through a temporary name); nothing when `scrapes` is empty. Throws std::runtime_error.
void write_server_metrics_jsonl(const std::filesystem::path& path, const std::vector<ServerScrape>& scrapes);
/// Scrapes from the text of a server_metrics.jsonl; throws std::runtime_error "<name>:<line>: ..." .
std::vector<ServerScrape> parse_server_metrics_jsonl(const std::string& text, const std::string& name);

}  // namespace results
