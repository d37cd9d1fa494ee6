// Tests for TagPattern: the forward.md §6 vectors (read from test/data/tag_patterns.txt), the
// equivalence of the fast paths with the general RE2 path, and every compile error.

#include "src/tag_pattern.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace ferry {
namespace {

struct Vector {
  std::string pattern;
  std::string tag;
  bool expected = false;
  int line = 0;
};

std::vector<Vector> LoadVectors() {
  const std::string path = std::string(FERRY_SOURCE_DIR) + "/test/data/tag_patterns.txt";
  std::ifstream in(path);
  INFO("reading " << path);
  REQUIRE(in.good());
  std::vector<Vector> vectors;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto tab1 = line.find('\t');
    const auto tab2 = tab1 == std::string::npos ? tab1 : line.find('\t', tab1 + 1);
    INFO("line " << line_no << ": " << line);
    // A malformed line must fail loudly rather than silently drop a vector.
    REQUIRE(tab2 != std::string::npos);
    const std::string verdict = line.substr(tab2 + 1);
    REQUIRE((verdict == "match" || verdict == "no"));
    vectors.push_back({line.substr(0, tab1), line.substr(tab1 + 1, tab2 - tab1 - 1),
                       verdict == "match", line_no});
  }
  return vectors;
}

bool Matches(const std::string& pattern, const std::string& tag) {
  std::string error;
  auto compiled = TagPattern::compile(pattern, error);
  INFO("pattern " << pattern << " error: " << error);
  REQUIRE(compiled.has_value());
  return compiled->matches(tag);
}

std::string CompileError(const std::string& pattern) {
  std::string error;
  auto compiled = TagPattern::compile(pattern, error);
  INFO("pattern " << pattern);
  CHECK_FALSE(compiled.has_value());
  return error;
}

// Wrapping a glob piece in braces keeps its meaning (the end of an alternative counts as the
// end of the piece) but defeats every fast path, forcing the general RE2 translation.
std::string WrapGlobPieces(const std::string& pattern) {
  std::string out;
  std::string piece;
  auto flush = [&] {
    if (!piece.empty()) {
      out += piece[0] == '/' ? piece : "{" + piece + "}";
      piece.clear();
    }
  };
  for (char c : pattern) {
    if (c == ' ' || c == '\t') {
      flush();
      out += c;
    } else {
      piece += c;
    }
  }
  flush();
  return out;
}

TEST_CASE("tag pattern: every spec vector", "[tag_pattern]") {
  const std::vector<Vector> vectors = LoadVectors();
  REQUIRE(vectors.size() >= 80);
  for (const Vector& v : vectors) {
    INFO(v.pattern << " | " << v.tag << " (line " << v.line << ")");
    std::string error;
    auto compiled = TagPattern::compile(v.pattern, error);
    INFO("error: " << error);
    REQUIRE(compiled.has_value());
    CHECK(compiled->matches(v.tag) == v.expected);
    CHECK(compiled->source() == v.pattern);
  }
}

TEST_CASE("tag pattern: spec vectors through the general regex path", "[tag_pattern]") {
  const std::vector<Vector> vectors = LoadVectors();
  REQUIRE(vectors.size() >= 80);
  for (const Vector& v : vectors) {
    const std::string wrapped = WrapGlobPieces(v.pattern);
    INFO(wrapped << " | " << v.tag << " (line " << v.line << ")");
    CHECK(Matches(wrapped, v.tag) == v.expected);
  }
}

TEST_CASE("tag pattern: fast paths agree with the regex path", "[tag_pattern]") {
  // Each of these hits a fast path (match-all, literal or prefix); shapes next to them that
  // must not (escaped dot before `**`) are included to pin the boundary.
  const std::vector<std::string> patterns = {
      "**",  "a",     "a.b",     "a.b.c",  "a\\*b", "a\\,b",   "[ab]",   "a.**",     "a.b.**",
      ".**", "a..**", "a\\..**", "a\\.**", "\\**",  "a\\{.**", "x/y.**", "a.b\\.**",
  };
  const std::vector<std::string> tags = {
      "",      "a",   "a.",  ".a",   "a.b",   "ab",    "a..",   "a..b", "a.b.c",  "a.bc",  "a.b.",
      "a*b",   "axb", "a,b", "[ab]", "a.b.*", "x/y",   "x/y.z", "x/yz", "a{",     "a{.b",  "a\nb",
      "a.\nb", "*",   "**",  "*.x",  "a\\.b", "a.b\\", ".",     "..",   "\xff.a", "a.\xff"};
  for (const std::string& pattern : patterns) {
    std::string error;
    auto fast = TagPattern::compile(pattern, error);
    auto slow = TagPattern::compile("{" + pattern + "}", error);
    INFO("pattern " << pattern << " error: " << error);
    REQUIRE(fast.has_value());
    REQUIRE(slow.has_value());
    for (const std::string& tag : tags) {
      INFO(pattern << " | " << tag);
      CHECK(fast->matches(tag) == slow->matches(tag));
    }
  }
}

TEST_CASE("tag pattern: whitespace separates alternatives", "[tag_pattern]") {
  const std::string pattern = "  a.b   \t a.c\t\tx.*  ";
  CHECK(Matches(pattern, "a.b"));
  CHECK(Matches(pattern, "a.c"));
  CHECK(Matches(pattern, "x.y"));
  CHECK_FALSE(Matches(pattern, "a.d"));
  CHECK_FALSE(Matches(pattern, "x.y.z"));
  CHECK_FALSE(Matches(pattern, ""));
  CHECK_FALSE(Matches(pattern, " "));
  CHECK(Matches("a\nb", "b"));
}

TEST_CASE("tag pattern: `.**.` in the middle may vanish", "[tag_pattern]") {
  CHECK(Matches("a.**.b", "a.b"));
  CHECK(Matches("a.**.b", "a.x.b"));
  CHECK(Matches("a.**.b", "a.x.y.b"));
  CHECK_FALSE(Matches("a.**.b", "ab"));
  CHECK_FALSE(Matches("a.**.b", "a.xb"));
  CHECK_FALSE(Matches("a.**.b", "ax.b"));
  CHECK_FALSE(Matches("a.**.b", "a.b.c"));
  CHECK_FALSE(Matches("a.**.b", "a"));
  // The dot is required when `**` runs straight into a literal.
  CHECK(Matches("a.**b", "a.b"));
  CHECK(Matches("a.**b", "a.x.yb"));
  CHECK_FALSE(Matches("a.**b", "ab"));
  CHECK(Matches("**.**", "a.b"));
}

TEST_CASE("tag pattern: backslash escapes", "[tag_pattern]") {
  CHECK(Matches("a\\*b", "a*b"));
  CHECK_FALSE(Matches("a\\*b", "axb"));
  CHECK_FALSE(Matches("a\\*b", "ab"));
  CHECK_FALSE(Matches("a\\*b", "a\\*b"));
  CHECK(Matches("\\{a\\}", "{a}"));
  CHECK_FALSE(Matches("\\{a\\}", "a"));
  CHECK(Matches("a\\\\b", "a\\b"));
  // An escaped dot is an ordinary character, so `.**` after it is not the vanishing kind.
  CHECK(Matches("a\\.**", "a.b"));
  CHECK_FALSE(Matches("a\\.**", "a"));
  CHECK(Matches("{a\\,b,c}", "a,b"));
  CHECK_FALSE(Matches("{a\\,b,c}", "a"));
}

TEST_CASE("tag pattern: nested braces and literal metacharacters", "[tag_pattern]") {
  const std::string pattern = "{a,{b,c}}.x";
  CHECK(Matches(pattern, "a.x"));
  CHECK(Matches(pattern, "b.x"));
  CHECK(Matches(pattern, "c.x"));
  CHECK_FALSE(Matches(pattern, "d.x"));
  CHECK_FALSE(Matches(pattern, "bc.x"));
  CHECK_FALSE(Matches(pattern, "a.x.y"));
  CHECK(Matches("{a.*,b.{c,d.**}}", "a.z"));
  CHECK(Matches("{a.*,b.{c,d.**}}", "b.d"));
  CHECK(Matches("{a.*,b.{c,d.**}}", "b.d.e.f"));
  CHECK_FALSE(Matches("{a.*,b.{c,d.**}}", "b.de"));
  CHECK_FALSE(Matches("{a.*,b.{c,d.**}}", "a.z.y"));
  CHECK(Matches("a{,b}", "a"));
  CHECK(Matches("a{,b}", "ab"));
  // No character classes, and a comma outside braces is just a comma.
  CHECK(Matches("[ab]", "[ab]"));
  CHECK_FALSE(Matches("[ab]", "a"));
  CHECK(Matches("a,b", "a,b"));
  CHECK_FALSE(Matches("a,b", "a"));
  // Regex metacharacters in a glob are literal.
  CHECK(Matches("a+(b)?$", "a+(b)?$"));
  CHECK_FALSE(Matches("a+(b)?$", "aab"));
}

TEST_CASE("tag pattern: regex alternatives", "[tag_pattern]") {
  CHECK(Matches("//", ""));
  CHECK_FALSE(Matches("//", "a"));
  CHECK(Matches("/a|b/", "b"));
  CHECK_FALSE(Matches("/a|b/", "ab"));
  CHECK(Matches("/x/ a.**", "a.b"));
  CHECK(Matches("/x/ a.**", "x"));
  // Back-references are outside RE2 as well, so they also go through the std::regex fallback.
  CHECK(Matches("/(a+)-\\1/", "aa-aa"));
  CHECK_FALSE(Matches("/(a+)-\\1/", "aa-a"));
  CHECK(Matches("/(?=a).*/", "abc"));
  CHECK_FALSE(Matches("/(?=a).*/", "bc"));
}

TEST_CASE("tag pattern: compile errors", "[tag_pattern]") {
  SECTION("empty") {
    CHECK(CompileError("") == "empty pattern");
    CHECK(CompileError(" \t ") == "empty pattern");
  }
  SECTION("unbalanced open brace") {
    CHECK(CompileError("{a,b") == "unbalanced '{' at column 1");
    CHECK(CompileError("a.b x.{y,{z}") == "unbalanced '{' at column 7");
  }
  SECTION("unbalanced close brace") {
    CHECK(CompileError("a}") == "unbalanced '}' at column 2");
    CHECK(CompileError("{a}}") == "unbalanced '}' at column 4");
  }
  SECTION("unterminated regex") {
    CHECK(CompileError("/ab") == "unterminated regex '/ab'");
    CHECK(CompileError("/") == "unterminated regex '/'");
    CHECK(CompileError("a /b/c") == "unterminated regex '/b/c'");
  }
  SECTION("invalid regex") {
    CHECK_THAT(CompileError("/(/"), Catch::Matchers::StartsWith("invalid regex '/(/': "));
    CHECK_THAT(CompileError("a /a[/"), Catch::Matchers::StartsWith("invalid regex '/a[/': "));
  }
  SECTION("trailing backslash") {
    CHECK(CompileError("a\\") == "trailing '\\' at column 2");
    CHECK(CompileError("x a.{b,c}\\") == "trailing '\\' at column 10");
  }
}

TEST_CASE("tag pattern: move keeps the compiled matcher", "[tag_pattern]") {
  std::string error;
  auto compiled = TagPattern::compile("a.** /b.*/", error);
  REQUIRE(compiled.has_value());
  TagPattern moved = std::move(*compiled);
  CHECK(moved.source() == "a.** /b.*/");
  CHECK(moved.matches("a.x"));
  CHECK(moved.matches("bc"));
  CHECK_FALSE(moved.matches("c"));
  auto other = TagPattern::compile("c", error);
  REQUIRE(other.has_value());
  *other = std::move(moved);
  CHECK(other->matches("a"));
  CHECK_FALSE(other->matches("c"));
}

}  // namespace
}  // namespace ferry
