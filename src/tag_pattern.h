// Fluentd <match>-style tag patterns (forward.md §6): `*`, `**`, `{a,b}`, `/regex/`,
// space-separated alternatives, and the `a.**` matches `a` rule. Compiled once at config time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

class TagPattern {
 public:
  // Compiles `pattern`. On a bad pattern returns nullopt and sets `error` to a one-line
  // reason (e.g. "unterminated regex '/ab'", "unbalanced '{' at column 3").
  static std::optional<TagPattern> compile(std::string_view pattern, std::string& error);

  // True when `tag` matches any of the space-separated alternatives. Never allocates
  // for glob alternatives; thread-compatible (const).
  bool matches(std::string_view tag) const;

  const std::string& source() const { return source_; }

  TagPattern(TagPattern&&) noexcept;
  TagPattern& operator=(TagPattern&&) noexcept;
  ~TagPattern();

 private:
  struct Impl;
  explicit TagPattern(std::string source, std::unique_ptr<Impl> impl);
  std::string source_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
