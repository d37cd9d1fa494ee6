// Tests for Matcher: the heka.md §3.4 vectors plus ferry's own (test/data/matcher_vectors.txt),
// error columns, limits, the regex fast paths against RE2, Heka's typed quirks, short-circuit
// evaluation, readsOnlyType(), and the branch program against a reference evaluator.

#include "src/matcher.h"

#include <re2/re2.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "src/message_view.h"

namespace ferry {
namespace {

// One field occurrence. Only the array matching `type` holds the values, as in Heka.
struct TestField {
  std::string name;
  FieldType type = FieldType::String;
  std::vector<std::string> strings;  // String, Bytes
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<bool> bools;
};

TestField Str(std::string name, std::vector<std::string> v) {
  return {std::move(name), FieldType::String, std::move(v), {}, {}, {}};
}
TestField Bytes(std::string name, std::vector<std::string> v) {
  return {std::move(name), FieldType::Bytes, std::move(v), {}, {}, {}};
}
TestField Int(std::string name, std::vector<int64_t> v) {
  return {std::move(name), FieldType::Integer, {}, std::move(v), {}, {}};
}
TestField Dbl(std::string name, std::vector<double> v) {
  return {std::move(name), FieldType::Double, {}, {}, std::move(v), {}};
}
TestField Bool(std::string name, std::vector<bool> v) {
  return {std::move(name), FieldType::Bool, {}, {}, {}, std::move(v)};
}

// A Heka message held in plain members. Records every read in `reads` so that tests can
// see what evaluation touched.
struct TestMessage : MessageView {
  std::string uuid, type, logger, payload, env_version, hostname;
  int64_t timestamp = 0;
  int64_t severity = 7;
  int64_t pid = 0;
  std::vector<TestField> fields;
  mutable std::vector<std::string> reads;

  std::string_view stringVar(StringVar v) const override {
    switch (v) {
      case StringVar::Uuid:
        reads.push_back("Uuid");
        return uuid;
      case StringVar::Type:
        reads.push_back("Type");
        return type;
      case StringVar::Logger:
        reads.push_back("Logger");
        return logger;
      case StringVar::Payload:
        reads.push_back("Payload");
        return payload;
      case StringVar::EnvVersion:
        reads.push_back("EnvVersion");
        return env_version;
      case StringVar::Hostname:
        reads.push_back("Hostname");
        return hostname;
    }
    return {};
  }

  int64_t numberVar(NumberVar v) const override {
    switch (v) {
      case NumberVar::Timestamp:
        reads.push_back("Timestamp");
        return timestamp;
      case NumberVar::Severity:
        reads.push_back("Severity");
        return severity;
      case NumberVar::Pid:
        reads.push_back("Pid");
        return pid;
    }
    return 0;
  }

  bool field(std::string_view name, uint32_t occurrence, uint32_t element,
             FieldValue& out) const override {
    reads.push_back("Fields[" + std::string(name) + "]");
    uint32_t seen = 0;
    for (const TestField& f : fields) {
      if (f.name != name || seen++ != occurrence) continue;
      out = FieldValue();
      out.type = f.type;
      switch (f.type) {
        case FieldType::String:
        case FieldType::Bytes:
          if (element >= f.strings.size()) return false;
          out.s = f.strings[element];
          return true;
        case FieldType::Integer:
          if (element >= f.ints.size()) return false;
          out.i = f.ints[element];
          return true;
        case FieldType::Double:
          if (element >= f.doubles.size()) return false;
          out.d = f.doubles[element];
          return true;
        case FieldType::Bool:
          if (element >= f.bools.size()) return false;
          out.b = f.bools[element];
          return true;
      }
      return false;
    }
    return false;
  }
};

// heka.md §3.4's message (all_specs_test.go), with the fixed values the vectors file names.
TestMessage HekaTestMessage() {
  TestMessage m;
  m.uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
  m.timestamp = 1700000000123456789;
  m.type = "TEST";
  m.logger = "GoSpec";
  m.severity = 6;
  m.payload = "Test Payload";
  m.env_version = "0.8";
  m.pid = 4242;
  m.hostname = "ferry-test-host";
  m.fields = {
      Str("foo", {"bar"}),
      Int("number", {64}),
      Bytes("bytes", {"data"}),
      Int("int", {999, 1024}),
      Dbl("double", {99.9}),
      Bool("bool", {true}),
      Str("foo", {"alternate"}),
      Str("Payload", {"name=test;type=web;"}),
      Str("Timestamp", {"Mon Jan 02 15:04:05 -0700 2006"}),
      Int("zero", {0}),
      Str("string", {"43"}),
  };
  return m;
}

std::unique_ptr<Matcher> Compile(const std::string& expr, const MatcherLimits& limits = {}) {
  std::string error;
  auto matcher = Matcher::compile(expr, error, limits);
  INFO("expression: " << expr << "\nerror: " << error);
  REQUIRE(matcher != nullptr);
  CHECK(error.empty());
  return matcher;
}

bool Eval(const std::string& expr, const MessageView& m) {
  return Compile(expr)->matches(m);
}

std::string ErrorOf(const std::string& expr, const MatcherLimits& limits = {}) {
  std::string error;
  auto matcher = Matcher::compile(expr, error, limits);
  INFO("expression: " << expr);
  CHECK(matcher == nullptr);
  CHECK_FALSE(error.empty());
  return error;
}

// A string literal that may contain NUL bytes.
template <size_t N>
std::string Bin(const char (&s)[N]) {
  return std::string(s, N - 1);
}

struct Vector {
  std::string verdict;
  std::string expr;
  int line = 0;
};

std::vector<Vector> LoadVectors() {
  const std::string path = std::string(FERRY_SOURCE_DIR) + "/test/data/matcher_vectors.txt";
  std::ifstream in(path);
  INFO("reading " << path);
  REQUIRE(in.good());
  std::vector<Vector> vectors;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    INFO("line " << line_no << ": " << line);
    // A malformed line must fail loudly rather than silently drop a vector.
    REQUIRE(tab != std::string::npos);
    Vector v{line.substr(0, tab), line.substr(tab + 1), line_no};
    REQUIRE((v.verdict == "parse_error" || v.verdict == "true" || v.verdict == "false"));
    vectors.push_back(std::move(v));
  }
  return vectors;
}

TEST_CASE("matcher: vectors from test/data/matcher_vectors.txt", "[matcher]") {
  const std::vector<Vector> vectors = LoadVectors();
  REQUIRE(vectors.size() >= 90);
  const TestMessage m = HekaTestMessage();
  for (const Vector& v : vectors) {
    INFO("line " << v.line << ": " << v.verdict << " `" << v.expr << "`");
    std::string error;
    auto matcher = Matcher::compile(v.expr, error);
    INFO("error: " << error);
    if (v.verdict == "parse_error") {
      CHECK(matcher == nullptr);
      CHECK(error.rfind("column ", 0) == 0);
    } else {
      REQUIRE(matcher != nullptr);
      CHECK(matcher->matches(m) == (v.verdict == "true"));
    }
  }
}

TEST_CASE("matcher: parse errors give the 1-based column and a reason", "[matcher]") {
  CHECK(ErrorOf("") == "column 1: empty expression");
  CHECK(ErrorOf(" \t\n") == "column 4: empty expression");
  CHECK(ErrorOf("Severity == 'x'") == "column 13: expected a number after '==', found 'x'");
  CHECK(ErrorOf("Type = 'test'") == "column 6: '=' is not an operator (did you mean '=='?)");
  CHECK(ErrorOf("Type > 5") == "column 8: expected a quoted string after '>', found 5");
  CHECK(ErrorOf("Type == 'TEST' &&") ==
        "column 18: expected a test, TRUE, FALSE or '(', found the end of the expression");
  CHECK(ErrorOf("(Type == 'a'") ==
        "column 13: expected ')' to close the '(' at column 1, found the end of the expression");
  CHECK(ErrorOf("Type == 'a')") == "column 12: ')' without a matching '('");
  CHECK(ErrorOf("TRUE FALSE").rfind("column 6: expected '&&', '||' or the end", 0) == 0);
  CHECK(ErrorOf("Tpye == 'a'") == "column 1: unknown identifier 'Tpye'");
  CHECK(ErrorOf("x || true").find("column 1: unknown identifier 'x'") == 0);
  CHECK(ErrorOf("TRUE || true") ==
        "column 9: unknown identifier 'true' (did you mean 'TRUE'? names are case-sensitive)");
  CHECK(ErrorOf("Fields[a") == "column 7: unterminated 'Fields[' (no closing ']')");
  CHECK(ErrorOf("Fields[] == 'a'") == "column 7: empty field name in 'Fields[]'");
  CHECK(ErrorOf("Fields[a][0][0][0] == 'x'") ==
        "column 16: too many indexes: Fields[name][occurrence][element] is the most");
  CHECK(ErrorOf("Fields[a][x] == 'x'") == "column 11: a field index must be decimal digits");
  CHECK(ErrorOf("Fields[a][99999999999] == NIL") == "column 11: field index is too large");
  CHECK(ErrorOf("Severity == 1e") == "column 13: '1e' is not a number");
  CHECK(ErrorOf("Severity == 1-2") == "column 13: '1-2' is not a number");
  CHECK(ErrorOf("Severity == 1e400") == "column 13: number 1e400 is out of range");
  CHECK(ErrorOf("Severity == -1") ==
        "column 13: unexpected '-' (number literals have no sign, as in Heka)");
  CHECK(ErrorOf("Type =~ /\\ytest/").rfind("column 9: invalid regex: ", 0) == 0);
  CHECK(ErrorOf("Type =~ /test") == "column 9: unterminated regex (no closing /)");
  CHECK(ErrorOf("Type != 'test\"") == "column 9: unterminated string (no closing ')");
  CHECK(ErrorOf("Pid =~ /6/") == "column 5: '=~' cannot be used with Pid, which is a number");
  CHECK(ErrorOf("Fields[b] != TRUE") == "column 14: TRUE and FALSE can only follow '=='");
  CHECK(ErrorOf("Fields[b] > NIL") == "column 13: NIL can only follow '==' or '!='");
  CHECK(ErrorOf("NIL") == "column 1: NIL can only follow 'Fields[...] ==' or 'Fields[...] !='");
  CHECK(ErrorOf("Type == 'a' # b") == "column 13: unexpected character '#'");
  CHECK(ErrorOf("Type == 'a' \x01") == "column 13: unexpected byte 0x01");
  // Columns count bytes, newlines included.
  CHECK(ErrorOf("Type == 'a'\n&& Pid == x") == "column 23: unknown identifier 'x'");
  // A long token is shortened in the message.
  CHECK(ErrorOf("Type == " + std::string(100, '9'))
            .find("found 99999999999999999999999999999999...") != std::string::npos);
}

TEST_CASE("matcher: a successful compile clears the error and keeps the source", "[matcher]") {
  std::string error = "stale";
  auto matcher = Matcher::compile("Type == 'TEST'\n", error);
  REQUIRE(matcher != nullptr);
  CHECK(error.empty());
  CHECK(matcher->source() == "Type == 'TEST'\n");
}

TEST_CASE("matcher: length limit", "[matcher]") {
  // Pad with spaces so the length is exact and the expression otherwise valid.
  const std::string base = "Type == 'TEST'";
  const std::string at_limit = base + std::string(4096 - base.size(), ' ');
  CHECK(Compile(at_limit)->matches(HekaTestMessage()));
  CHECK(ErrorOf(at_limit + " ") ==
        "column 4097: expression is 4097 bytes long, over the limit of 4096");

  MatcherLimits small;
  small.max_length = 14;
  CHECK(Compile(base, small) != nullptr);
  CHECK(ErrorOf(base + " ", small) ==
        "column 15: expression is 15 bytes long, over the limit of 14");
}

TEST_CASE("matcher: parenthesis depth limit", "[matcher]") {
  const auto nested = [](uint32_t depth) {
    return std::string(depth, '(') + "Severity == 6" + std::string(depth, ')');
  };
  const TestMessage m = HekaTestMessage();
  CHECK(Compile(nested(32))->matches(m));
  CHECK(ErrorOf(nested(33)) == "column 33: parentheses nested deeper than the limit of 32");

  MatcherLimits flat;
  flat.max_depth = 0;
  CHECK(Compile("Severity == 6 && TRUE", flat)->matches(m));
  CHECK(ErrorOf("(TRUE)", flat) == "column 1: parentheses nested deeper than the limit of 0");

  // Depth counts nesting, not how many groups there are.
  MatcherLimits two;
  two.max_depth = 2;
  CHECK(Compile("((TRUE)) && ((TRUE) || (FALSE)) && (TRUE)", two)->matches(m));
  CHECK(ErrorOf("(TRUE) && (((TRUE)))", two) ==
        "column 13: parentheses nested deeper than the limit of 2");
}

TEST_CASE("matcher: long flat chains need no recursion", "[matcher]") {
  MatcherLimits big;
  big.max_length = 1 << 20;
  std::string expr;
  for (int i = 0; i < 20000; ++i) {
    expr += "Severity == 1 || Fields[f] == 'x' && TRUE || ";
  }
  const TestMessage m = HekaTestMessage();
  CHECK(Compile(expr + "Severity == 6", big)->matches(m));
  CHECK_FALSE(Compile(expr + "Severity == 5", big)->matches(m));
}

TEST_CASE("matcher: newline, carriage return and tab are whitespace", "[matcher]") {
  const TestMessage m = HekaTestMessage();
  // Heka stopped at the newline and would have answered true here.
  CHECK_FALSE(Eval("Type == 'TEST'\n&& Severity == 5", m));
  CHECK(Eval("Type == 'TEST'\r\n&&\tSeverity == 6\r\n", m));
  CHECK(Eval("\n(\nFields[foo]\n==\n'bar'\n)\n", m));
  // Inside quotes and regexes a newline is an ordinary byte.
  TestMessage multi;
  multi.payload = "line1\nline2";
  CHECK(Eval("Payload == 'line1\nline2'", multi));
  CHECK(Eval("Payload =~ /1\nl/", multi));
  CHECK_FALSE(Eval("Payload =~ /^line2/", multi));
}

TEST_CASE("matcher: quoted strings and regex escapes", "[matcher]") {
  TestMessage m;
  m.fields = {
      Str("quote", {"it's"}),
      Str("dquote", {"say \"hi\""}),
      Str("backslash_n", {"a\\nb"}),      // four bytes: a \ n b
      Str("two_backslashes", {"a\\\\"}),  // a \ \ .
      Str("slash", {"a/b"}),
      Str("bs_dq", {"x\\\"y"}),  // x \ " y
  };
  CHECK(Eval("Fields[quote] == 'it\\'s'", m));
  CHECK(Eval("Fields[quote] == \"it's\"", m));
  CHECK(Eval("Fields[dquote] == \"say \\\"hi\\\"\"", m));
  CHECK(Eval("Fields[dquote] == 'say \"hi\"'", m));
  // No escape processing beyond the quote: \n stays a backslash and an n.
  CHECK(Eval("Fields[backslash_n] == 'a\\nb'", m));
  // A backslash pair stays a pair and does not escape the closing quote.
  CHECK(Eval("Fields[two_backslashes] == 'a\\\\'", m));
  // A backslash before the other quote character is kept.
  CHECK(Eval("Fields[bs_dq] == 'x\\\"y'", m));
  // In a regex, \/ is a slash; \\ reaches RE2 as an escaped backslash.
  CHECK(Eval("Fields[slash] =~ /^a\\/b$/", m));
  CHECK(Eval("Fields[two_backslashes] =~ /a\\\\/", m));
  CHECK(Eval("Fields[backslash_n] =~ /a\\\\nb/", m));
  CHECK_FALSE(Eval("Fields[backslash_n] =~ /a\\nb/", m));  // RE2's \n is a newline.
  CHECK(Eval("Fields[quote] =~ /it\\x27s/", m));
}

TEST_CASE("matcher: regex fast paths agree with RE2", "[matcher]") {
  // Every string up to 5 bytes over an alphabet with a newline and a lone UTF-8 lead byte.
  std::vector<std::string> subjects = {""};
  const std::string alphabet = "ab\n\xc3";
  for (size_t start = 0, len = 1; len <= 5; ++len) {
    const size_t end = subjects.size();
    for (size_t i = start; i < end; ++i) {
      for (char c : alphabet) {
        subjects.push_back(subjects[i] + c);
      }
    }
    start = end;
  }
  REQUIRE(subjects.size() == 1365);

  const std::vector<std::string> patterns = {
      "",   "^",   "$",   "^$",   "a",   "ab",     "ba",    "^a",        "^ab",
      "b$", "ab$", "^a$", "^ab$", "a b", "^ab\\/", "\\/b$", "aa=,;:'\"", "^b a$",
  };
  RE2::Options options;
  options.set_log_errors(false);
  for (const std::string& pattern : patterns) {
    // The same pattern with an empty group, which RE2 treats identically but which is not
    // a plain literal, so the matcher has to run RE2.
    std::string slow = pattern;
    const size_t at = !slow.empty() && slow[0] == '^' ? 1 : 0;
    slow.insert(at, "(?:)");
    std::string unescaped = pattern;
    for (size_t p; (p = unescaped.find("\\/")) != std::string::npos;) {
      unescaped.erase(p, 1);
    }
    const RE2 reference(unescaped, options);
    REQUIRE(reference.ok());

    INFO("pattern /" << pattern << "/ vs /" << slow << "/");
    auto fast_match = Compile("Type =~ /" + pattern + "/");
    auto fast_nomatch = Compile("Fields[t] !~ /" + pattern + "/");
    auto slow_match = Compile("Type =~ /" + slow + "/");
    auto slow_nomatch = Compile("Fields[t] !~ /" + slow + "/");
    CHECK(fast_match->regexCount() == 0);
    CHECK(fast_nomatch->regexCount() == 0);
    CHECK(slow_match->regexCount() == 1);
    CHECK(slow_nomatch->regexCount() == 1);

    size_t mismatches = 0;
    TestMessage m;
    m.fields = {Str("t", {""})};
    for (const std::string& s : subjects) {
      m.type = s;
      m.fields[0].strings[0] = s;
      const bool expected = RE2::PartialMatch(s, reference);
      if (fast_match->matches(m) != expected || slow_match->matches(m) != expected ||
          fast_nomatch->matches(m) == expected || slow_nomatch->matches(m) == expected) {
        ++mismatches;
        UNSCOPED_INFO("subject `" << s << "` expected " << expected);
      }
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("matcher: only plain literals take the fast path", "[matcher]") {
  CHECK(Compile("Type =~ /^TE/")->regexCount() == 0);
  CHECK(Compile("Type =~ /ST$/ || Type !~ /^TEST$/ || Type =~ /ES/")->regexCount() == 0);
  CHECK(Compile("Type =~ /T.E/")->regexCount() == 1);
  CHECK(Compile("Type =~ /^T\\.E/")->regexCount() == 1);
  CHECK(Compile("Type =~ /(ST)/")->regexCount() == 1);
  CHECK(Compile("Type =~ /ST$$/")->regexCount() == 1);
  CHECK(Compile("Type =~ /^^ST/")->regexCount() == 1);
  CHECK(Compile("Type =~ /caf\xc3\xa9/")->regexCount() == 1);
  // Invalid UTF-8 is rejected by RE2, as Go's regexp rejected it.
  ErrorOf("Type =~ /\xff/");
}

TEST_CASE("matcher: BOOL fields ignore the operator (Heka quirk)", "[matcher]") {
  TestMessage m;
  m.fields = {Bool("t", {true}), Bool("f", {false})};
  // `== TRUE` asks "is it true"; every other literal asks "is it false".
  CHECK(Eval("Fields[t] == TRUE", m));
  CHECK_FALSE(Eval("Fields[t] == FALSE", m));
  CHECK_FALSE(Eval("Fields[f] == TRUE", m));
  CHECK(Eval("Fields[f] == FALSE", m));
  for (const char* rest :
       {"== 'x'", "!= 'x'", "> 3", "< 3", "== 0", "=~ /x/", "!~ /x/", "== 'TRUE'", "== 1"}) {
    INFO(rest);
    CHECK_FALSE(Eval(std::string("Fields[t] ") + rest, m));
    CHECK(Eval(std::string("Fields[f] ") + rest, m));
  }
  CHECK(Eval("Fields[t] != NIL", m));
  CHECK_FALSE(Eval("Fields[f] == NIL", m));
}

TEST_CASE("matcher: STRING fields compare TRUE and FALSE as text (Heka quirk)", "[matcher]") {
  TestMessage m;
  m.fields = {Str("s", {"TRUE"}), Str("f", {"FALSE"}), Bytes("b", {"TRUE"}),
              Str("lower", {"true"})};
  CHECK(Eval("Fields[s] == TRUE", m));
  CHECK_FALSE(Eval("Fields[s] == FALSE", m));
  CHECK(Eval("Fields[f] == FALSE", m));
  CHECK_FALSE(Eval("Fields[f] == TRUE", m));
  CHECK(Eval("Fields[b] == TRUE", m));
  CHECK_FALSE(Eval("Fields[lower] == TRUE", m));
}

TEST_CASE("matcher: BYTES compare byte-wise as strings", "[matcher]") {
  TestMessage m;
  m.fields = {Bytes("b", {std::string("\xff\x00z", 3)}), Bytes("empty", {""})};
  // Unsigned byte order: 0xff sorts after every ASCII byte.
  CHECK(Eval("Fields[b] > 'z'", m));
  CHECK(Eval("Fields[b] > '\x7f'", m));
  CHECK_FALSE(Eval("Fields[b] < 'a'", m));
  CHECK(Eval("Fields[b] =~ /z$/", m));
  // A NUL byte is an ordinary byte inside a quoted string.
  CHECK(Eval(Bin("Fields[b] == '\xff\x00z'"), m));
  CHECK_FALSE(Eval(Bin("Fields[b] == '\xff\x00'"), m));
  CHECK(Eval("Fields[empty] == ''", m));
  CHECK(Eval("Fields[empty] != NIL", m));
  CHECK_FALSE(Eval("Fields[empty] == 0", m));
}

TEST_CASE("matcher: numbers compare as doubles", "[matcher]") {
  TestMessage m;
  m.timestamp = (int64_t{1} << 53) + 1;
  m.severity = 3;
  m.fields = {Int("big", {(int64_t{1} << 53) + 1}), Int("neg", {-5}), Dbl("half", {0.5}),
              Int("int", {999})};
  CHECK(Eval("Fields[int] == 999.0", m));
  CHECK(Eval("Fields[int] < 999.5", m));
  CHECK(Eval("Fields[half] == .5", m));
  CHECK(Eval("Fields[half] == 5e-1", m));
  CHECK(Eval("Fields[neg] < 0", m));
  CHECK(Eval("Severity == 3.0", m));
  // int64 values above 2^53 lose their low bits, as in Heka.
  CHECK(Eval("Timestamp == 9007199254740992", m));
  CHECK(Eval("Fields[big] == 9007199254740992", m));
  CHECK_FALSE(Eval("Timestamp > 9007199254740992", m));
}

TEST_CASE("matcher: header variables read the view's defaults", "[matcher]") {
  TestMessage m;  // Everything absent: strings "", Severity 7, Pid 0, Timestamp 0.
  CHECK(Eval("Type == '' && Uuid == '' && Logger == '' && Payload == ''", m));
  CHECK(Eval("EnvVersion == '' && Hostname == ''", m));
  CHECK(Eval("Severity == 7 && Pid == 0 && Timestamp == 0", m));
  CHECK(Eval("Type =~ /^$/", m));
  CHECK_FALSE(Eval("Type > ''", m));
}

TEST_CASE("matcher: a missing field passes only == NIL", "[matcher]") {
  TestMessage m;
  m.fields = {Str("s", {"v"}), Int("empty_ints", {})};
  for (const char* target :
       {"Fields[missing]", "Fields[s][1]", "Fields[s][0][1]", "Fields[empty_ints]"}) {
    INFO(target);
    const std::string t = target;
    CHECK(Eval(t + " == NIL", m));
    for (const char* rest : {"!= NIL", "== 'v'", "!= 'v'", "< 'z'", ">= ''", "== 0", "!= 0", "< 1",
                             "=~ /x/", "!~ /x/", "=~ //", "== TRUE", "== FALSE"}) {
      INFO(rest);
      CHECK_FALSE(Eval(t + " " + rest, m));
    }
  }
}

TEST_CASE("matcher: field names and indexes", "[matcher]") {
  TestMessage m;
  m.fields = {Str("my key.x", {"v"}), Str("caf\xc3\xa9", {"w"}), Str("arr", {"a", "b", "c"}),
              Str("arr", {"d"}), Int("[", {1})};
  CHECK(Eval("Fields[my key.x] == 'v'", m));
  CHECK(Eval("Fields[caf\xc3\xa9] == 'w'", m));
  CHECK(Eval("Fields[[] == 1", m));
  CHECK(Eval("Fields[arr][0][2] == 'c'", m));
  CHECK(Eval("Fields[arr][1] == 'd'", m));
  CHECK(Eval("Fields[arr][1][1] == NIL", m));
  CHECK(Eval("Fields[arr][00][001] == 'b'", m));
  // A space is part of the name, not skipped.
  CHECK(Eval("Fields[ arr] == NIL", m));
}

TEST_CASE("matcher: evaluation short-circuits left to right", "[matcher]") {
  const TestMessage m = HekaTestMessage();
  const auto reads = [&](const std::string& expr) {
    auto matcher = Compile(expr);
    m.reads.clear();
    matcher->matches(m);
    return m.reads;
  };
  using V = std::vector<std::string>;
  CHECK(reads("Type == 'x' && Severity == 6") == V{"Type"});
  CHECK(reads("Type == 'TEST' && Severity == 6") == V{"Type", "Severity"});
  CHECK(reads("Type == 'TEST' || Fields[a] == 'b'") == V{"Type"});
  CHECK(reads("Type == 'x' || Severity == 5 && Pid == 1 || Fields[foo] == 'bar'") ==
        V{"Type", "Severity", "Fields[foo]"});
  CHECK(reads("(Type == 'x' || Severity == 6) && (Pid == 4242 || Logger == 'y')") ==
        V{"Type", "Severity", "Pid"});
  CHECK(reads("TRUE") == V{});
  // Constant operands are folded away: nothing is read when the answer is already known.
  CHECK(reads("FALSE && Severity == 6") == V{});
  CHECK(reads("Severity == 6 || TRUE") == V{});
}

TEST_CASE("matcher: readsOnlyType", "[matcher]") {
  CHECK(Compile("Type == 'a' || Type =~ /b/")->readsOnlyType());
  CHECK(Compile("TRUE")->readsOnlyType());
  CHECK(Compile("FALSE")->readsOnlyType());
  CHECK(Compile("Type != 'a' && (Type < 'b' || Type !~ /^c/)")->readsOnlyType());
  // Folded constants take the other variables with them.
  CHECK(Compile("Type == 'a' || FALSE && Severity == 1")->readsOnlyType());

  CHECK_FALSE(Compile("Type == 'a' && Severity == 1")->readsOnlyType());
  CHECK_FALSE(Compile("Type == 'a' || Payload == 'b'")->readsOnlyType());
  CHECK_FALSE(Compile("Fields[Type] == 'a'")->readsOnlyType());
  CHECK_FALSE(Compile("Fields[x] == NIL")->readsOnlyType());
  for (const char* expr : {"Uuid == ''", "Logger == ''", "Payload =~ /x/", "EnvVersion == ''",
                           "Hostname == ''", "Timestamp > 0", "Severity < 3", "Pid == 1"}) {
    INFO(expr);
    CHECK_FALSE(Compile(expr)->readsOnlyType());
  }
}

// Random expressions over tests with known answers, checked against a direct evaluation of
// the same tree: covers the branch program, operand order, folding and grouping.
TEST_CASE("matcher: branch program agrees with a reference evaluator", "[matcher]") {
  struct Atom {
    const char* text;
    bool value;
  };
  const std::vector<Atom> atoms = {
      {"TRUE", true},
      {"FALSE", false},
      {"Type == 'TEST'", true},
      {"Severity == 5", false},
      {"Fields[foo] =~ /^b/", true},
      {"Fields[missing] != NIL", false},
      {"Pid > 1", true},
      {"Payload =~ /x+y/", false},
  };
  const TestMessage m = HekaTestMessage();
  std::mt19937 rng(12345);
  // Builds an expression of `size` operands, returning its text and value.
  std::function<std::pair<std::string, bool>(int)> build = [&](int size) {
    if (size == 1) {
      const Atom& a = atoms[rng() % atoms.size()];
      return std::make_pair(std::string(a.text), a.value);
    }
    const int left = 1 + static_cast<int>(rng() % static_cast<unsigned>(size - 1));
    auto l = build(left);
    auto r = build(size - left);
    const bool is_and = rng() % 2 == 0;
    // Always parenthesise, so the tree is exactly the one built here.
    return std::make_pair("(" + l.first + (is_and ? " && " : " || ") + r.first + ")",
                          is_and ? (l.second && r.second) : (l.second || r.second));
  };
  int trues = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto [expr, expected] = build(1 + static_cast<int>(rng() % 12));
    INFO(expr);
    REQUIRE(Compile(expr)->matches(m) == expected);
    trues += expected;
  }
  // Both answers were exercised.
  CHECK(trues > 200);
  CHECK(trues < 1800);

  // Without parentheses, && binds tighter: a || b && c == a || (b && c).
  for (int i = 0; i < 500; ++i) {
    std::string flat;
    std::vector<std::vector<bool>> disjuncts(1);
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) {
      const Atom& a = atoms[rng() % atoms.size()];
      if (k > 0) {
        const bool is_and = rng() % 2 == 0;
        flat += is_and ? " && " : " || ";
        if (!is_and) disjuncts.emplace_back();
      }
      flat += a.text;
      disjuncts.back().push_back(a.value);
    }
    bool expected = false;
    for (const auto& conj : disjuncts) {
      bool all = true;
      for (bool b : conj) {
        all = all && b;
      }
      expected = expected || all;
    }
    INFO(flat);
    REQUIRE(Compile(flat)->matches(m) == expected);
  }
}

}  // namespace
}  // namespace ferry
