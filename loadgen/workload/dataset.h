// Dataset files: Alpaca-style (the JSON array [{instruction, input, output}], JSON lines of the same, extra
// fields such as alpaca-libre's "status" ignored unless asked; Self-Instruct seed tasks {instruction,
// instances: [{input, output}]}) and ShareGPT conversations ([{id, conversations: [{from, value}]}],
// loadgen/workload/sharegpt.h). The format is recognised from the records themselves unless forced. Files
// may be gzip-compressed. Bad records are reported by file and line/record number; the caller chooses to
// stop at the first or to skip them and count.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/enum_names.h"
#include "loadgen/clients/client.h"

namespace loadgen {

/// A dataset file could not be read or holds a bad record (under on_bad = fail); what() names file, where, why.
struct DatasetError : std::runtime_error { using std::runtime_error::runtime_error; };

/// One exchange of a conversation: the user's message and what answers it, a reference text (ShareGPT's
/// gpt turn) or, for synthetic data, a number of tokens.
struct Turn {
  std::string user;
  std::string reference;    ///< its token length sets the turn's output length (unless output_len > 0)
  int output_len = 0;       ///< > 0: exactly this many tokens (synthetic datasets)
};

struct Sample {
  int64_t id = 0;           ///< stable index in the file: array position, JSON-lines record number, or seed instance number
  std::string instruction;  ///< Alpaca records
  std::string input;        ///< may be empty
  std::string output;       ///< the reference answer (its token length sets max_new_tokens by default)
  std::string system;       ///< a conversation's system message ("" for none)
  std::vector<Turn> turns;  ///< conversation records (ShareGPT, synthetic); empty for Alpaca records
  bool is_conversation() const { return !turns.empty(); }
};

enum class OnBadRecord { kFail, kSkip };
inline constexpr auto kOnBadRecordNames =
    common::enum_names<OnBadRecord>({{OnBadRecord::kFail, "fail"}, {OnBadRecord::kSkip, "skip"}});
inline const char* to_string(OnBadRecord o) { return kOnBadRecordNames.name(o); }

/// What the records are: recognised from the first record (auto), or forced by --dataset-format.
enum class DatasetFormat { kAuto, kAlpaca, kShareGpt };
inline constexpr auto kDatasetFormatNames = common::enum_names<DatasetFormat>(
    {{DatasetFormat::kAuto, "auto"}, {DatasetFormat::kAlpaca, "alpaca"}, {DatasetFormat::kShareGpt, "sharegpt"}});
inline const char* to_string(DatasetFormat f) { return kDatasetFormatNames.name(f); }

struct DatasetOptions {
  DatasetFormat format = DatasetFormat::kAuto;
  bool status_ok_only = false;          ///< JSON lines: keep only records whose "status" is "ok" (alpaca-libre)
  OnBadRecord on_bad = OnBadRecord::kFail;
};

struct BadRecord {
  std::string where;   ///< "line 2279" (JSON lines) or "record 17" (JSON array)
  std::string reason;
};

struct Dataset {
  std::string path;
  std::string format;               ///< alpaca-json | jsonl | seed-tasks | sharegpt | sharegpt-jsonl | random | prefix
  std::vector<Sample> samples;
  std::vector<BadRecord> skipped;   ///< bad records skipped under on_bad = skip
  int64_t filtered = 0;             ///< records dropped by status_ok_only
};

/// Reads the whole file (gzip detected by its magic bytes). Throws DatasetError.
Dataset load_dataset(const std::string& path, const DatasetOptions& options = {});

/// Parses text already in memory; `name` is used in messages. Throws DatasetError.
Dataset parse_dataset(const std::string& text, const std::string& name, const DatasetOptions& options = {});


}  // namespace loadgen
