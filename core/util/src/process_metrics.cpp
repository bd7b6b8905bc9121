#include <registryd/util/process_metrics.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace registryd::util {
namespace {

prometheus::MetricFamily family(const char* name, const char* help, prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

// Seconds since the epoch at which the system booted (/proc/stat btime).
std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 16, '\n');
  }
  return std::nullopt;
}

}  // namespace

std::vector<prometheus::MetricFamily> process_collector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  using prometheus::MetricType;
  out.push_back(family("registryd_build_info", "The registryd release running (always 1).", MetricType::Gauge, 1));
  out.back().metric.back().label.push_back({"version", REGISTRYD_VERSION});
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));

  // /proc/self/stat: the fields after the command name (which may hold spaces and ')').
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  if (const auto close = stat.rfind(')'); close != std::string::npos && ticks > 0) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
    // Field numbers of proc(5), counted from 3 (state) here at index 0.
    if (f.size() > 21) {
      const double utime = std::stod(f[11]), stime = std::stod(f[12]);
      out.push_back(family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                           MetricType::Counter, (utime + stime) / ticks));
      out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
                           std::stod(f[20])));
      out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                           MetricType::Gauge, std::stod(f[21]) * page));
      if (const auto booted = boot_time()) {
        out.push_back(family("process_start_time_seconds", "Start time of the process since the epoch, in seconds.",
                             MetricType::Gauge, *booted + std::stod(f[19]) / ticks));
      }
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  if (!ec) {
    out.push_back(family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(fds)));
  }
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    out.push_back(family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(files.rlim_cur)));
  }
  return out;
}

}  // namespace registryd::util
