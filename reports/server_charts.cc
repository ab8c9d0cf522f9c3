#include "reports/server_charts.h"

#include <cmath>
#include <limits>
#include <optional>

#include "reports/html_report.h"

namespace reports {

namespace {

using results::ServerScrape;

// One gauge over the scrapes; a failed scrape or a missing gauge breaks the line (NaN) instead of drawing 0.
svg::Series gauge_series(std::string name, const std::vector<ServerScrape>& scrapes,
                         std::optional<double> ServerScrape::*field, double scale) {
  svg::Series s{std::move(name), {}, {}, svg::SeriesStyle::kLine};
  for (const ServerScrape& sc : scrapes) {
    const std::optional<double>& v = sc.*field;
    s.x.push_back(sc.t_s);
    s.y.push_back(v ? *v * scale : std::numeric_limits<double>::quiet_NaN());
  }
  return s;
}

bool has(const std::vector<ServerScrape>& scrapes, std::optional<double> ServerScrape::*field) {
  for (const ServerScrape& sc : scrapes)
    if ((sc.*field).has_value()) return true;
  return false;
}

}  // namespace

std::vector<svg::Chart> server_charts(const std::vector<const results::RunData*>& runs) {
  svg::Chart load;
  load.id = "server-requests";
  load.title = "Server: requests running and waiting (its /metrics) beside the client's in flight";
  load.x_label = "seconds from run start";
  load.y_label = "requests";
  svg::Chart kv;
  kv.id = "server-kv";
  kv.title = "Server: KV-cache use (its /metrics)";
  kv.x_label = "seconds from run start";
  kv.y_label = "% of the KV cache";
  kv.y_max = 100;
  size_t with_metrics = 0;
  for (const results::RunData* run : runs) with_metrics += !run->server_metrics.empty();
  for (const results::RunData* run : runs) {
    const auto& sc = run->server_metrics;
    if (sc.empty()) continue;
    // Legends are short: the run's label only when there are several runs to tell apart.
    const std::string who = with_metrics > 1 ? run->label + ": " : "";
    if (has(sc, &ServerScrape::running))
      load.series.push_back(gauge_series(who + "running (server)", sc, &ServerScrape::running, 1));
    if (has(sc, &ServerScrape::waiting))
      load.series.push_back(gauge_series(who + "waiting (server)", sc, &ServerScrape::waiting, 1));
    svg::Series client = requests_in_flight(*run);
    client.name = who + "in flight (client)";
    load.series.push_back(std::move(client));
    if (has(sc, &ServerScrape::kv_cache_usage))
      kv.series.push_back(gauge_series(who + "KV cache (server)", sc, &ServerScrape::kv_cache_usage, 100));
  }
  std::vector<svg::Chart> out;
  if (with_metrics == 0) return out;
  out.push_back(std::move(load));
  if (!kv.series.empty()) out.push_back(std::move(kv));
  return out;
}

}  // namespace reports
