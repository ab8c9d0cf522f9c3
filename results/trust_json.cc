#include "results/trust_json.h"

#include "results/json_fields.h"

namespace results {
namespace {

using namespace json_fields;

json dist_to_json(const Distribution& d) {
  return {{"count", d.count},         {"mean", number(d.mean)}, {"median", number(d.median)}, {"std", number(d.std)},
          {"p90", number(d.p90)},     {"p95", number(d.p95)},   {"p99", number(d.p99)},       {"max", number(d.max)}};
}

Distribution dist_from_json(const json& j, const std::string& where) {
  Distribution d;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  d.count = opt_int(j, "count", where).value_or(0);
  d.mean = opt_double(j, "mean", where).value_or(nan);
  d.median = opt_double(j, "median", where).value_or(nan);
  d.std = opt_double(j, "std", where).value_or(nan);
  d.p90 = opt_double(j, "p90", where).value_or(nan);
  d.p95 = opt_double(j, "p95", where).value_or(nan);
  d.p99 = opt_double(j, "p99", where).value_or(nan);
  d.max = opt_double(j, "max", where).value_or(nan);
  return d;
}

std::vector<std::string> strings(const json& j, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) fail(where, std::string("field \"") + key + "\" is not an array");
  for (const json& v : *it) {
    if (!v.is_string()) fail(where, std::string("field \"") + key + "\" holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

json validity_to_json(const Validity& v) {
  json bounds = json::array();
  for (const PercentileBound& b : v.bounds)
    bounds.push_back({{"metric", b.metric}, {"percentile", b.percentile}, {"n", b.n}, {"estimate_ms", number(b.estimate)},
                      {"upper_bound_ms", b.upper ? number(*b.upper) : json(nullptr)}, {"rank", b.rank},
                      {"min_n", b.min_n}});
  return {{"verdict", v.valid ? "VALID" : "INVALID"},
          {"valid", v.valid},
          {"reasons", v.reasons},
          {"warnings", v.warnings},
          {"confidence", v.confidence},
          {"min_duration_s", number(v.min_duration_s)},
          {"min_requests", v.min_requests},
          {"preset", v.preset},
          {"bounds", bounds},
          {"slo_met", v.slo_met ? json(*v.slo_met) : json(nullptr)},
          {"slo_notes", v.slo_notes}};
}

Validity validity_from_json(const json& j, const std::string& where) {
  Validity v;
  v.valid = opt_bool(j, "valid", where).value_or(false);
  v.reasons = strings(j, "reasons", where);
  v.warnings = strings(j, "warnings", where);
  v.confidence = opt_double(j, "confidence", where).value_or(0.99);
  v.min_duration_s = opt_double(j, "min_duration_s", where).value_or(0);
  v.min_requests = opt_int(j, "min_requests", where).value_or(0);
  v.preset = opt_string(j, "preset", where);
  if (auto it = j.find("bounds"); it != j.end() && it->is_array())
    for (const json& b : *it) {
      PercentileBound p;
      const std::string in = where + " bounds";
      p.metric = opt_string(b, "metric", in);
      p.percentile = opt_double(b, "percentile", in).value_or(99);
      p.n = opt_int(b, "n", in).value_or(0);
      p.estimate = opt_double(b, "estimate_ms", in).value_or(std::numeric_limits<double>::quiet_NaN());
      p.upper = opt_double(b, "upper_bound_ms", in);
      p.rank = opt_int(b, "rank", in).value_or(0);
      p.min_n = opt_int(b, "min_n", in).value_or(0);
      v.bounds.push_back(p);
    }
  v.slo_met = opt_bool(j, "slo_met", where);
  v.slo_notes = strings(j, "slo_notes", where);
  return v;
}

void put_trust_fields(json& j, const Summary& s) {
  j["interrupted"] = s.interruption.has_value();
  if (const auto& i = s.interruption)
    j["interruption"] = {{"cause", i->cause},   {"at_s", number(i->at_s)}, {"scheduled", i->scheduled},
                         {"sent", i->sent},     {"not_sent", i->scheduled - i->sent},
                         {"ended", i->ended},   {"aborted", i->aborted}};
  else
    j["interruption"] = nullptr;
  j["validity"] = validity_to_json(s.validity);
  if (const auto& c = s.client_cost)
    j["client_cost"] = {{"busy_fraction", number(c->busy_fraction)}, {"busy_source", c->busy_source},
                        {"cpu_per_request_us", c->cpu_per_request_us >= 0 ? number(c->cpu_per_request_us) : json()},
                        {"chunk_lag_p50_ms", number(c->chunk_lag_p50_ms)},
                        {"chunk_lag_p99_ms", number(c->chunk_lag_p99_ms)},
                        {"chunk_lag_max_ms", number(c->chunk_lag_max_ms)}, {"chunks", c->chunks}};
  if (const auto& st = s.steady_state)
    j["steady_state"] = {{"start_s", number(st->start_s)}, {"end_s", number(st->end_s)},
                         {"plateau_in_flight", number(st->plateau_in_flight)}, {"requests", st->requests},
                         {"ttft_ms", dist_to_json(st->ttft)}, {"tpot_ms", dist_to_json(st->tpot)},
                         {"itl_ms", dist_to_json(st->itl)}, {"e2el_ms", dist_to_json(st->e2el)}};
}

void get_trust_fields(const json& j, const std::string& where, Summary* s) {
  if (auto it = j.find("interruption"); it != j.end() && !it->is_null()) {
    const json o = opt_object(j, "interruption", where);
    const std::string in = where + " interruption";
    Interruption i;
    i.cause = opt_string(o, "cause", in);
    i.at_s = opt_double(o, "at_s", in).value_or(0);
    i.scheduled = opt_int(o, "scheduled", in).value_or(0);
    i.sent = opt_int(o, "sent", in).value_or(0);
    i.ended = opt_int(o, "ended", in).value_or(0);
    i.aborted = opt_int(o, "aborted", in).value_or(0);
    s->interruption = i;
  }
  if (auto it = j.find("validity"); it != j.end() && !it->is_null())
    s->validity = validity_from_json(opt_object(j, "validity", where), where + " validity");
  if (auto it = j.find("client_cost"); it != j.end() && !it->is_null()) {
    const json o = opt_object(j, "client_cost", where);
    const std::string in = where + " client_cost";
    ClientCost c;
    c.busy_fraction = opt_double(o, "busy_fraction", in).value_or(0);
    c.busy_source = opt_string(o, "busy_source", in);
    if (auto cpu = o.find("cpu_per_request_us"); cpu != o.end() && !cpu->is_null())
      c.cpu_per_request_us = opt_double(o, "cpu_per_request_us", in).value_or(-1);
    c.chunk_lag_p50_ms = opt_double(o, "chunk_lag_p50_ms", in).value_or(0);
    c.chunk_lag_p99_ms = opt_double(o, "chunk_lag_p99_ms", in).value_or(0);
    c.chunk_lag_max_ms = opt_double(o, "chunk_lag_max_ms", in).value_or(0);
    c.chunks = opt_int(o, "chunks", in).value_or(0);
    s->client_cost = c;
  }
  if (auto it = j.find("steady_state"); it != j.end() && !it->is_null()) {
    const json o = opt_object(j, "steady_state", where);
    const std::string in = where + " steady_state";
    SteadyState st;
    st.start_s = opt_double(o, "start_s", in).value_or(0);
    st.end_s = opt_double(o, "end_s", in).value_or(0);
    st.plateau_in_flight = opt_double(o, "plateau_in_flight", in).value_or(0);
    st.requests = opt_int(o, "requests", in).value_or(0);
    st.ttft = dist_from_json(opt_object(o, "ttft_ms", in), in + " ttft_ms");
    st.tpot = dist_from_json(opt_object(o, "tpot_ms", in), in + " tpot_ms");
    st.itl = dist_from_json(opt_object(o, "itl_ms", in), in + " itl_ms");
    st.e2el = dist_from_json(opt_object(o, "e2el_ms", in), in + " e2el_ms");
    s->steady_state = st;
  }
}

}  // namespace results
