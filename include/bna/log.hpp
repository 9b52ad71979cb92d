// Logging hook: the library prints nothing itself. Messages go to the sink installed with
// set_log_sink (default: none, i.e. dropped). The CLI installs a stderr sink.
#pragma once

#include <functional>
#include <string_view>

namespace bna {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };
using LogSink = std::function<void(LogLevel, std::string_view)>;

void set_log_sink(LogSink sink);
void set_log_level(LogLevel min_level);
void log(LogLevel level, std::string_view message);

}  // namespace bna
