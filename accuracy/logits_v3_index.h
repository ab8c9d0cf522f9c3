// Version 3 of the logits file (logits_file.cc has the whole layout): the columns of its /index dataset, which
// the writer (logits_writer.cc) appends and the reader (logits_reader.cc) checks. Internal to this module.
#pragma once

namespace accuracy::v3 {

// Version 3's /index: one row per request, these columns (also the dataset's "columns" attribute). Offsets
// and lengths count elements of the dataset named (ids and prompt_text: bytes; steps: rows of tokens,
// token_logprobs, top_ids and top_logprobs alike).
enum IndexColumn : int { kIdOffset, kIdLength, kPromptOffset, kPromptLength, kStepOffset, kStepCount, kTextOffset,
                         kTextLength, kUnmappedCount, kIndexColumns };
constexpr const char* kIndexColumnNames =
    "id_offset,id_length,prompt_offset,n_prompt,step_offset,n_steps,text_offset,text_length,unmapped";

}  // namespace accuracy::v3
