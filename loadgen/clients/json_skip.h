// Where a JSON container ends, found by its quotes, backslashes and brackets alone, 64 bytes a step: the
// locator of logprobs_deferred.cc passes over choices[0].logprobs with it (with K = 20 most of a chunk's
// bytes). Nothing is checked: the text is read properly by whoever takes the value.
//
// The rules: a backslash takes the byte after it along, wherever it is (that byte is then nothing: not a
// quote, not a bracket, not a backslash); any other quote opens or closes a string; {, [ outside strings go
// one level deeper and }, ] one level up, whatever opened it. In valid JSON that is exactly where the
// container ends.
#pragma once

namespace loadgen {

/// `p` just past a container's opening bracket: just past the bracket that closes it, or nullptr where
/// the text [p, end) ends first.
const char* past_container(const char* p, const char* end);

/// The same rules a byte at a time: the reference the tests hold past_container to.
const char* past_container_plain(const char* p, const char* end);

}  // namespace loadgen
