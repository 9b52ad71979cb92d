// Status and Expected<T>: the library's only error channel.
// Anything a user can cause (bad shapes, bad files, bad parameters) comes back as a Status with a
// message that names the argument, the value and what was expected. Programmer errors use
// BNA_ASSERT, which aborts with file:line. Nothing here throws across the public API.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace bna {

enum class StatusCode { kOk = 0, kInvalidArgument, kOutOfRange, kNotFound, kIoError, kCorrupt,
                        kUnimplemented, kUnavailable, kInternal };

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: graph: T=0, expected T >= 1"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Expected<T>: a value or a non-ok Status.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}                       // NOLINT(implicit)
  Expected(Status status) : v_(std::move(status)) {                 // NOLINT(implicit)
    if (std::get<Status>(v_).is_ok()) v_ = Status(StatusCode::kInternal, "Expected built from ok Status");
  }
  bool has_value() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; ok() when a value is held.
  Status status() const { return has_value() ? Status() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] void assert_fail(const char* cond, const char* file, int line);

}  // namespace bna

#define BNA_ASSERT(cond) \
  do { if (!(cond)) ::bna::assert_fail(#cond, __FILE__, __LINE__); } while (0)

// Propagate a non-ok Status from an expression returning Status.
#define BNA_RETURN_IF_ERROR(expr) \
  do { ::bna::Status bna_st_ = (expr); if (!bna_st_.is_ok()) return bna_st_; } while (0)

#define BNA_CONCAT_INNER(a, b) a##b
#define BNA_CONCAT(a, b) BNA_CONCAT_INNER(a, b)
// BNA_ASSIGN_OR_RETURN(auto x, f()): unwrap an Expected or return its Status.
#define BNA_ASSIGN_OR_RETURN(lhs, expr) \
  BNA_ASSIGN_OR_RETURN_IMPL(BNA_CONCAT(bna_ex_, __LINE__), lhs, expr)
#define BNA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.has_value()) return tmp.status();      \
  lhs = std::move(tmp).value()
