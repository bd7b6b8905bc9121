#include "metrics.hpp"

#include <registryd/sdk/metrics_text.hpp>

namespace registryd::direct {
namespace {

constexpr std::array<std::string_view, 4> route_names = {"manifest", "blob", "tags_list", "referrers"};
constexpr std::array<std::string_view, 5> local_names = {"NAME_UNKNOWN", "NAME_INVALID", "UNSUPPORTED",
                                                         "invalid_reference", "ok"};
constexpr std::array<std::string_view, 4> status_names = {"2xx", "3xx", "4xx", "5xx"};
constexpr std::array<std::string_view, 10> failure_names = {
    "connect", "timeout", "tls", "io", "protocol", "canceled", "unauthorized", "throttled", "server", "body"};

void inc(std::atomic<std::uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

using sdk::metrics_text::label_value;

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

}  // namespace

void direct_metrics::forwarded(oci::route_kind route, std::string_view method) noexcept {
  std::size_t r = 0;
  switch (route) {
    case oci::route_kind::manifest: r = 0; break;
    case oci::route_kind::blob: r = 1; break;
    case oci::route_kind::tags_list: r = 2; break;
    case oci::route_kind::referrers: r = 3; break;
    default: return;
  }
  inc(forwarded_[r][method == "HEAD" ? 1 : 0]);
}

void direct_metrics::answered_locally(std::string_view code) noexcept {
  if (code == "NAME_UNKNOWN") inc(local_[0]);
  else if (code == "NAME_INVALID") inc(local_[1]);
  else if (code == "UNSUPPORTED") inc(local_[2]);
  else if (code.empty()) inc(local_[4]);
  else inc(local_[3]);
}

void direct_metrics::upstream_status(int status) noexcept {
  if (status < 300) inc(status_[0]);
  else if (status < 400) inc(status_[1]);
  else if (status < 500) inc(status_[2]);
  else inc(status_[3]);
}

void direct_metrics::upstream_failure(const oci::client::upstream_error& e) noexcept {
  using oci::client::error_kind;
  switch (e.kind) {
    case error_kind::connect: inc(failures_[0]); return;
    case error_kind::timeout: inc(failures_[1]); return;
    case error_kind::tls: inc(failures_[2]); return;
    case error_kind::io: inc(failures_[3]); return;
    case error_kind::protocol:
    case error_kind::invalid_argument: inc(failures_[4]); return;
    case error_kind::canceled: inc(failures_[5]); return;
    case error_kind::http:
      if (e.status == 401) inc(failures_[6]);
      else if (e.status == 429) inc(failures_[7]);
      else if (e.status >= 500) inc(failures_[8]);
      return;
  }
}

void direct_metrics::body_failure() noexcept { inc(failures_[9]); }

void direct_metrics::stream_closed(bool complete) noexcept {
  streams_active_.fetch_sub(1, std::memory_order_relaxed);
  if (!complete) inc(streams_abandoned_);
}

void direct_metrics::write(std::string& out, std::string_view images_repo, std::string_view scheme,
                           std::size_t relays, std::size_t waiting) const {
  header(out, "registryd_direct_info", "gauge", "The upstream registry Direct mode forwards pulls to.");
  out += "registryd_direct_info{images_repo=\"" + label_value(images_repo) + "\",scheme=\"" +
         label_value(scheme) + "\"} 1\n";

  header(out, "registryd_direct_requests_total", "counter",
         "Requests forwarded to the upstream registry, by route and method.");
  for (std::size_t r = 0; r < route_names.size(); ++r) {
    for (std::size_t m = 0; m < 2; ++m) {
      out += "registryd_direct_requests_total{route=\"" + std::string(route_names[r]) + "\",method=\"" +
             (m == 0 ? "GET" : "HEAD") + "\"} " + std::to_string(forwarded_[r][m].load()) + "\n";
    }
  }
  header(out, "registryd_direct_local_answers_total", "counter",
         "Requests answered without the upstream (refused names, push, catalog), by code.");
  for (std::size_t i = 0; i < local_names.size(); ++i) {
    out += "registryd_direct_local_answers_total{code=\"" + std::string(local_names[i]) + "\"} " +
           std::to_string(local_[i].load()) + "\n";
  }
  header(out, "registryd_direct_upstream_responses_total", "counter",
         "Final answers of the upstream registry, by status class.");
  for (std::size_t i = 0; i < status_names.size(); ++i) {
    out += "registryd_direct_upstream_responses_total{class=\"" + std::string(status_names[i]) + "\"} " +
           std::to_string(status_[i].load()) + "\n";
  }
  header(out, "registryd_direct_upstream_errors_total", "counter",
         "Upstream failures: unreachable (connect, timeout, tls, io), broken answers (protocol, body), "
         "registryd's credentials refused (unauthorized), 429 (throttled), 5xx (server).");
  for (std::size_t i = 0; i < failure_names.size(); ++i) {
    out += "registryd_direct_upstream_errors_total{kind=\"" + std::string(failure_names[i]) + "\"} " +
           std::to_string(failures_[i].load()) + "\n";
  }
  header(out, "registryd_direct_bytes_total", "counter", "Body bytes passed from the upstream to clients.");
  out += "registryd_direct_bytes_total " + std::to_string(bytes_.load()) + "\n";
  header(out, "registryd_direct_streams_active", "gauge", "Answer bodies being passed through now.");
  out += "registryd_direct_streams_active " + std::to_string(streams_active_.load()) + "\n";
  header(out, "registryd_direct_streams_abandoned_total", "counter",
         "Answer bodies that ended before their last byte (the client left, or the upstream broke off).");
  out += "registryd_direct_streams_abandoned_total " + std::to_string(streams_abandoned_.load()) + "\n";
  header(out, "registryd_direct_relays_in_flight", "gauge",
         "Upstream exchanges open now, each until its client has read the answer (direct_max_relays).");
  out += "registryd_direct_relays_in_flight " + std::to_string(relays) + "\n";
  header(out, "registryd_direct_relays_waiting", "gauge",
         "Relays waiting for the upstream's answer head now, each on a worker (direct_max_relays_waiting).");
  out += "registryd_direct_relays_waiting " + std::to_string(waiting) + "\n";
  header(out, "registryd_direct_relays_refused_total", "counter",
         "Requests refused a relay: 503 past direct_max_relays (total) or direct_max_relays_waiting (waiting), "
         "429 past direct_max_relays_per_client.");
  out += "registryd_direct_relays_refused_total{limit=\"total\"} " + std::to_string(refused_[0].load()) + "\n";
  out += "registryd_direct_relays_refused_total{limit=\"per_client\"} " + std::to_string(refused_[1].load()) + "\n";
  out += "registryd_direct_relays_refused_total{limit=\"waiting\"} " + std::to_string(refused_[2].load()) + "\n";
}

}  // namespace registryd::direct
