// Compiles Fluentd <match> tag patterns (forward.md §6) into per-alternative matchers: cheap
// string tests for the common shapes, one RE2 program for other globs, RE2/std::regex for /re/.
// Glob semantics follow Fluentd's match.rb, restated without look-around so RE2 can run them.

#include "src/tag_pattern.h"

#include <re2/re2.h>

#include <cstddef>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

namespace {

enum class Kind {
  kAll,       // `**`: every tag, including the empty one.
  kLiteral,   // No glob characters: exact compare.
  kPrefix,    // `literal.**`: the literal itself or anything under `literal.`.
  kRe2,       // Any other glob, or a /regex/ RE2 accepts.
  kStdRegex,  // A /regex/ only ECMAScript accepts (look-around).
};

struct Alternative {
  Kind kind = Kind::kAll;
  std::string text;  // kLiteral: the tag; kPrefix: the part before ".**".
  std::unique_ptr<re2::RE2> re2;
  std::unique_ptr<std::regex> std_re;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Appends `c` so that it matches only itself. Globs are compiled as Latin-1, so each byte is one
// character and bytes >= 0x80 can be written as \x{HH} without caring about UTF-8 validity.
void AppendLiteral(char c, std::string& re) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_') {
    re += c;
  } else if (u > 0x20 && u < 0x7f) {
    re += '\\';
    re += c;
  } else {
    static constexpr char kHex[] = "0123456789abcdef";
    re += "\\x{";
    re += kHex[u >> 4];
    re += kHex[u & 0xf];
    re += '}';
  }
}

std::string Column(std::size_t offset) {
  return "column " + std::to_string(offset + 1);
}

// Translates one glob piece into an RE2 pattern (matched with FullMatch). `base` is the piece's
// offset in the whole pattern, for error columns. Returns false and sets `error` on bad syntax.
//
// Fluentd turns a dot before `**` into the look-ahead (?![^.]) so that `a.**` also matches `a`.
// RE2 has no look-around, so the dot and the `**` are rewritten together instead:
//   `.**` at the end of the piece or of a brace alternative -> (?:\..*)?   (`a.**` matches `a`)
//   `.**.`                                                  -> \.(?:.*\.)? (`a.**.b` matches `a.b`)
//   `.**` followed by anything else                         -> \..*        (the dot is required)
// These agree with Fluentd except for contrived shapes such as `{a.**}b` or `.**..x`.
// A `**.` without a preceding dot becomes (?:.*\.|^), exactly as in Fluentd (`**.a` matches `a`
// but not `ba`); RE2 supports `^` anywhere as "start of text".
bool TranslateGlob(std::string_view piece, std::size_t base, std::string& re, std::string& error) {
  std::vector<std::size_t> open_braces;  // Offsets of unclosed '{', innermost last.
  const std::size_t n = piece.size();
  std::size_t i = 0;
  while (i < n) {
    const char c = piece[i];
    // True when `**` is followed by the end of this piece or of the current brace alternative.
    const auto ends_alternative = [&](std::size_t j) {
      return j == n || (!open_braces.empty() && (piece[j] == ',' || piece[j] == '}'));
    };
    if (c == '\\') {
      if (i + 1 == n) {
        error = "trailing '\\' at " + Column(base + i);
        return false;
      }
      AppendLiteral(piece[i + 1], re);
      i += 2;
    } else if (c == '.' && piece.substr(i + 1, 2) == "**") {
      const std::size_t after = i + 3;
      if (ends_alternative(after)) {
        re += "(?:\\..*)?";
        i = after;
      } else if (piece[after] == '.') {
        re += "\\.(?:.*\\.)?";
        i = after + 1;
      } else {
        re += "\\.";
        i += 1;  // The `**` is handled as a plain one on the next iteration.
      }
    } else if (c == '*' && i + 1 < n && piece[i + 1] == '*') {
      if (i + 2 < n && piece[i + 2] == '.') {
        re += "(?:.*\\.|^)";
        i += 3;
      } else {
        re += ".*";
        i += 2;
      }
    } else if (c == '*') {
      re += "[^.]*";
      i += 1;
    } else if (c == '{') {
      open_braces.push_back(i);
      re += "(?:";
      i += 1;
    } else if (c == '}') {
      if (open_braces.empty()) {
        error = "unbalanced '}' at " + Column(base + i);
        return false;
      }
      open_braces.pop_back();
      re += ')';
      i += 1;
    } else if (c == ',' && !open_braces.empty()) {
      re += '|';
      i += 1;
    } else {
      // Includes ',' outside braces and '[': Fluentd has no character classes.
      AppendLiteral(c, re);
      i += 1;
    }
  }
  if (!open_braces.empty()) {
    error = "unbalanced '{' at " + Column(base + open_braces.back());
    return false;
  }
  return true;
}

// Reads the leading run of `piece` that contains no glob metacharacter, unescaping as it goes.
// Returns where it stopped; `last_escaped` says whether the final character taken was escaped.
std::size_t ScanLiteral(std::string_view piece, std::string& out, bool& last_escaped) {
  std::size_t i = 0;
  last_escaped = false;
  while (i < piece.size()) {
    const char c = piece[i];
    if (c == '*' || c == '{' || c == '}') {
      break;
    }
    if (c == '\\') {
      if (i + 1 == piece.size()) {
        break;
      }
      out += piece[i + 1];
      last_escaped = true;
      i += 2;
    } else {
      out += c;
      last_escaped = false;
      i += 1;
    }
  }
  return i;
}

// Picks a matcher that needs no regex engine when the glob's shape allows. Only called on a
// piece TranslateGlob accepted, so the syntax is already known to be valid.
bool TryFastPath(std::string_view piece, Alternative& alt) {
  if (piece == "**") {
    alt.kind = Kind::kAll;
    return true;
  }
  std::string literal;
  bool last_escaped = false;
  const std::size_t stop = ScanLiteral(piece, literal, last_escaped);
  if (stop == piece.size()) {
    alt.kind = Kind::kLiteral;
    alt.text = std::move(literal);
    return true;
  }
  // `prefix.**`: the dot must be a real (unescaped) one for the "may match nothing" rule.
  if (piece.substr(stop) == "**" && !literal.empty() && literal.back() == '.' && !last_escaped) {
    literal.pop_back();
    alt.kind = Kind::kPrefix;
    alt.text = std::move(literal);
    return true;
  }
  return false;
}

bool CompileRegex(std::string_view piece, Alternative& alt, std::string& error) {
  if (piece.size() < 2 || piece.back() != '/') {
    error = "unterminated regex '" + std::string(piece) + "'";
    return false;
  }
  const std::string body(piece.substr(1, piece.size() - 2));
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<re2::RE2>(body, options);
  if (re->ok()) {
    alt.kind = Kind::kRe2;
    alt.re2 = std::move(re);
    return true;
  }
  // Fluentd evaluates these with Ruby's Onigmo, which has look-around; RE2 deliberately lacks it
  // (it guarantees linear time). Real configs use `(?!...)` to exclude tags, so rather than
  // reject them we retry with std::regex, whose ECMAScript grammar has look-ahead. That engine
  // backtracks, but only patterns RE2 cannot handle ever reach it.
  try {
    alt.std_re = std::make_unique<std::regex>(body, std::regex::ECMAScript);
    alt.kind = Kind::kStdRegex;
    return true;
  } catch (const std::regex_error& e) {
    error = "invalid regex '" + std::string(piece) + "': " + re->error();
    return false;
  }
}

bool CompilePiece(std::string_view piece, std::size_t base, Alternative& alt, std::string& error) {
  if (piece.front() == '/') {
    return CompileRegex(piece, alt, error);
  }
  std::string re;
  if (!TranslateGlob(piece, base, re, error)) {
    return false;
  }
  if (TryFastPath(piece, alt)) {
    return true;
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  // Tags are bytes, not necessarily UTF-8: Latin-1 makes `[^.]` and `.` step one byte at a time.
  options.set_encoding(re2::RE2::Options::EncodingLatin1);
  // `**` must span every byte, newline included, to agree with the prefix and match-all paths.
  options.set_dot_nl(true);
  alt.re2 = std::make_unique<re2::RE2>(re, options);
  if (!alt.re2->ok()) {
    // The translation only emits valid syntax; reaching this is a bug, but fail closed.
    error = "internal error compiling '" + std::string(piece) + "': " + alt.re2->error();
    return false;
  }
  alt.kind = Kind::kRe2;
  return true;
}

bool AlternativeMatches(const Alternative& alt, std::string_view tag) {
  switch (alt.kind) {
    case Kind::kAll:
      return true;
    case Kind::kLiteral:
      return tag == alt.text;
    case Kind::kPrefix:
      return tag.substr(0, alt.text.size()) == alt.text &&
             (tag.size() == alt.text.size() || tag[alt.text.size()] == '.');
    case Kind::kRe2:
      return re2::RE2::FullMatch(tag, *alt.re2);
    case Kind::kStdRegex:
      return std::regex_match(tag.begin(), tag.end(), *alt.std_re);
  }
  return false;
}

}  // namespace

struct TagPattern::Impl {
  std::vector<Alternative> alternatives;
};

std::optional<TagPattern> TagPattern::compile(std::string_view pattern, std::string& error) {
  auto impl = std::make_unique<Impl>();
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (IsSpace(pattern[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < pattern.size() && !IsSpace(pattern[i])) {
      ++i;
    }
    Alternative alt;
    if (!CompilePiece(pattern.substr(start, i - start), start, alt, error)) {
      return std::nullopt;
    }
    impl->alternatives.push_back(std::move(alt));
  }
  if (impl->alternatives.empty()) {
    error = "empty pattern";
    return std::nullopt;
  }
  return TagPattern(std::string(pattern), std::move(impl));
}

bool TagPattern::matches(std::string_view tag) const {
  if (!impl_) {  // Moved-from.
    return false;
  }
  for (const Alternative& alt : impl_->alternatives) {
    if (AlternativeMatches(alt, tag)) {
      return true;
    }
  }
  return false;
}

TagPattern::TagPattern(std::string source, std::unique_ptr<Impl> impl)
    : source_(std::move(source)), impl_(std::move(impl)) {}
TagPattern::TagPattern(TagPattern&&) noexcept = default;
TagPattern& TagPattern::operator=(TagPattern&&) noexcept = default;
TagPattern::~TagPattern() = default;

}  // namespace ferry
