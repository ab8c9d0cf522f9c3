// Which samples of a server's /metrics say how loaded it is, whatever the server calls them:
//   running requests   vllm:num_requests_running · sglang:num_running_reqs · tgi_batch_current_size ·
//                      llamacpp:requests_processing · llm_num_requests_running (llm-serve)
//   waiting requests   vllm:num_requests_waiting · sglang:num_queue_reqs · tgi_queue_size ·
//                      llamacpp:requests_deferred · llm_num_requests_waiting
//   KV-cache use 0..1  vllm:kv_cache_usage_perc · vllm:gpu_cache_usage_perc (older vLLM; a fraction despite the
//                      name) · sglang:token_usage · llamacpp:kv_cache_usage_ratio · llm_kv_cache_usage_ratio
// A gauge given per label set (vLLM: one per model_name / engine) is summed for requests, averaged for usage.
#pragma once

#include <vector>

#include "results/server_metrics.h"

namespace loadgen {

/// Fills scrape.running, waiting and kv_cache_usage from scrape.samples (each left empty when the page has
/// none of its names).
void read_server_gauges(results::ServerScrape& scrape);

}  // namespace loadgen
