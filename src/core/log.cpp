// The logging hook: one global sink guarded by a mutex; dropped when none is installed.
#include "bna/log.hpp"

#include <mutex>

namespace bna {
namespace {
std::mutex g_mu;
LogSink g_sink;
LogLevel g_min = LogLevel::kInfo;
}  // namespace

void set_log_sink(LogSink sink) { std::lock_guard<std::mutex> lk(g_mu); g_sink = std::move(sink); }
void set_log_level(LogLevel min_level) { std::lock_guard<std::mutex> lk(g_mu); g_min = min_level; }
void log(LogLevel level, std::string_view message) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_sink && level >= g_min) g_sink(level, message);
}

}  // namespace bna
