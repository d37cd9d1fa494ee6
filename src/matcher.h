// Heka 0.10's message matcher language (heka.md §3): `message_matcher` expressions such as
// `Type == 'nginx' && Fields[status] >= 500`, compiled once at config time and evaluated
// against a MessageView per event (or once per batch when only the tag is read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "src/message_view.h"

namespace ferry {

struct MatcherLimits {
  size_t max_length = 4096;  // bytes of expression text
  uint32_t max_depth = 32;   // parentheses nested inside each other
};

class Matcher {
 public:
  // Compiles `expr`. On error returns nullptr and sets `error` to a one-line reason that
  // starts with the 1-based byte column, e.g. "column 13: expected a number after '=='".
  // On success `error` is cleared.
  static std::unique_ptr<Matcher> compile(std::string_view expr, std::string& error,
                                          const MatcherLimits& limits = {});

  // Evaluates against one event. Never throws and never allocates: literals, field names
  // and regexes are all prepared by compile(). Thread-safe (const).
  bool matches(const MessageView& m) const;

  // True when the expression reads no variable other than Type (constants included): the
  // router then evaluates it once per batch, since a forward chunk has one tag.
  bool readsOnlyType() const;

  const std::string& source() const { return source_; }

  // How many regexes need RE2 at match time; the others became plain prefix, suffix,
  // substring or equality tests. For tests and diagnostics.
  size_t regexCount() const;

  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;
  ~Matcher();

 private:
  struct Program;
  Matcher(std::string source, std::unique_ptr<Program> program);
  std::string source_;
  std::unique_ptr<Program> program_;
};

}  // namespace ferry
