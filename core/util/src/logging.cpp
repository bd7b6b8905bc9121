#include <registryd/util/logging.hpp>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

namespace registryd::util {
namespace {

// The fields of the entry being formatted on this thread (log_structured sets them around its
// call; the logger formats synchronously on the caller's thread).
thread_local const log_fields* current_fields = nullptr;

void append(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

// The length of the well-formed UTF-8 sequence `s` starts with, or 0 when it is not one
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Appends `text` escaped so that it cannot break its line: control characters as \n, \t,
// \u00XX, malformed UTF-8 as U+FFFD; with `quotes` (a JSON string, a quoted text value) also
// quotes and backslashes.
void append_escaped(spdlog::memory_buf_t& dest, std::string_view text, bool quotes) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Multi-byte UTF-8 is copied when well formed; any other byte becomes U+FFFD, so the
      // line stays valid whatever bytes a message carries.
      const std::size_t n = utf8_sequence_length(text.substr(i));
      if (n == 0) {
        append(dest, "\xef\xbf\xbd");  // U+FFFD
        ++i;
      } else {
        dest.append(text.data() + i, text.data() + i + n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': append(dest, quotes ? "\\\"" : "\""); break;
      case '\\': append(dest, quotes ? "\\\\" : "\\"); break;
      case '\n': append(dest, "\\n"); break;
      case '\r': append(dest, "\\r"); break;
      case '\t': append(dest, "\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static constexpr char hex[] = "0123456789abcdef";
          const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
          dest.append(esc, esc + sizeof esc);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

// %* : the message, escaped for a JSON string (json) or for one text line.
class escaped_message final : public spdlog::custom_flag_formatter {
 public:
  explicit escaped_message(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()), json_);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<escaped_message>(json_); }

 private:
  bool json_;
};

// %& : the entry's fields: `,"key":value` each for JSON, ` key=value` each for text (a text
// value with a space, quote or "=" is quoted).
class entry_fields final : public spdlog::custom_flag_formatter {
 public:
  explicit entry_fields(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (current_fields == nullptr) return;
    for (const auto& [key, value] : *current_fields) {
      append(dest, json_ ? ",\"" : " ");
      append(dest, key);
      append(dest, json_ ? "\":" : "=");
      std::visit([&](const auto& v) { put(dest, v); }, value);
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<entry_fields>(json_); }

 private:
  void put(spdlog::memory_buf_t& dest, std::monostate) const { append(dest, json_ ? "null" : "-"); }
  void put(spdlog::memory_buf_t& dest, std::string_view v) const {
    const bool quote = json_ || v.empty() || v.find_first_of(" \"=") != std::string_view::npos;
    if (quote) dest.push_back('"');
    append_escaped(dest, v, quote);
    if (quote) dest.push_back('"');
  }
  void put(spdlog::memory_buf_t& dest, std::int64_t v) const { append(dest, std::to_string(v)); }
  void put(spdlog::memory_buf_t& dest, double v) const {
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%.6f", v);
    dest.append(buf, buf + n);
  }
  bool json_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_formatter(bool json) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<escaped_message>('*', json);
  formatter->add_flag<entry_fields>('&', json);
  if (json) {
    formatter->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"%&})");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %*%&");
  }
  return formatter;
}

std::shared_ptr<spdlog::logger> make_logger(bool json, std::string_view level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("registryd", sink);
  logger->set_formatter(make_formatter(json));
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return logger;
}

void log_structured(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view message,
                    const log_fields& fields) {
  if (!logger.should_log(level)) return;
  const log_fields* outer = current_fields;
  current_fields = &fields;
  logger.log(level, "{}", message);
  current_fields = outer;
}

}  // namespace registryd::util
