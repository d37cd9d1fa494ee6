// Compiles Heka 0.10 message matcher expressions (heka.md §3) into a flat branch program:
// each test carries the index of the test to run next when it holds and when it does not,
// so evaluation is a loop with no recursion, no allocation and natural short-circuiting.

#include "src/matcher.h"

#include <re2/re2.h>

#include <charconv>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace ferry {

namespace {

enum class Subject : uint8_t { kStringVar, kNumberVar, kField };
enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kMatch, kNotMatch };
enum class Literal : uint8_t { kString, kNumber, kRegex, kTrue, kFalse, kNil };
// How a regex literal is tested. Everything but kRe2 is a plain string operation, used when
// the pattern is a literal with at most a leading '^' and a trailing '$'.
enum class RegexKind : uint8_t { kRe2, kPrefix, kSuffix, kContains, kExact };

// Branch targets past the last test: the expression's final answer.
constexpr uint32_t kAccept = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kReject = kAccept - 1;

struct Test {
  Subject subject = Subject::kStringVar;
  StringVar string_var = StringVar::Type;
  NumberVar number_var = NumberVar::Timestamp;
  Op op = Op::kEq;
  Literal literal = Literal::kString;
  RegexKind regex_kind = RegexKind::kRe2;
  uint32_t occurrence = 0;
  uint32_t element = 0;
  std::string_view name;  // kField: the field name.
  // kString: the string; kRegex: the literal part (all kinds but kRe2); kTrue/kFalse: the
  // keyword itself, because Heka compares a string field with `== TRUE` to the text "TRUE".
  std::string_view text;
  double number = 0;
  const re2::RE2* re = nullptr;
  uint32_t on_true = kAccept;
  uint32_t on_false = kReject;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsIdentChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || IsDigit(c) || c == '_';
}
bool IsNumberChar(char c) {
  return IsDigit(c) || c == '.' || c == 'e' || c == '+' || c == '-';
}

// A byte that a regex matches only against itself, whatever surrounds it. Kept to printable
// ASCII so that patterns RE2 would reject (invalid UTF-8) never take the fast path.
bool IsRegexLiteralChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u < 0x7f && std::strchr("\\.+*?()|[]{}^$", c) == nullptr;
}

bool AllRegexLiteral(std::string_view s) {
  for (char c : s) {
    if (!IsRegexLiteralChar(c)) return false;
  }
  return true;
}

// Picks a string operation equivalent to searching for `pattern`, or kRe2. RE2's `^` and `$`
// (without the `m` flag, which needs a '(') match only at the start and the very end of the
// text, so `^lit` is a prefix test and `lit$` a suffix test.
RegexKind ClassifyRegex(std::string_view pattern, std::string_view& literal) {
  const bool caret = !pattern.empty() && pattern.front() == '^';
  if (caret) pattern.remove_prefix(1);
  const bool dollar = !pattern.empty() && pattern.back() == '$';
  if (dollar) pattern.remove_suffix(1);
  if (!AllRegexLiteral(pattern)) return RegexKind::kRe2;
  literal = pattern;
  if (caret && dollar) return RegexKind::kExact;
  if (caret) return RegexKind::kPrefix;
  if (dollar) return RegexKind::kSuffix;
  return RegexKind::kContains;
}

const char* OpText(Op op) {
  switch (op) {
    case Op::kEq:
      return "==";
    case Op::kNe:
      return "!=";
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
    case Op::kMatch:
      return "=~";
    case Op::kNotMatch:
      return "!~";
  }
  return "?";
}

bool IsRegexOp(Op op) {
  return op == Op::kMatch || op == Op::kNotMatch;
}

enum class Tok : uint8_t {
  kEnd,
  kLParen,
  kRParen,
  kAnd,
  kOr,
  kOp,
  kStringVar,
  kNumberVar,
  kField,
  kTrue,
  kFalse,
  kNil,
  kString,
  kNumber,
  kRegex,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;  // Offset of the first byte in the expression.
  size_t end = 0;  // Offset just past the last byte.
  Op op = Op::kEq;
  StringVar string_var = StringVar::Type;
  NumberVar number_var = NumberVar::Timestamp;
  std::string text;  // kString, kRegex: the unescaped contents; kField: the name.
  uint32_t occurrence = 0;
  uint32_t element = 0;
  double number = 0;
};

struct Keyword {
  const char* word;
  Tok kind;
  StringVar string_var;
  NumberVar number_var;
};

constexpr Keyword kKeywords[] = {
    {"Uuid", Tok::kStringVar, StringVar::Uuid, NumberVar::Timestamp},
    {"Type", Tok::kStringVar, StringVar::Type, NumberVar::Timestamp},
    {"Logger", Tok::kStringVar, StringVar::Logger, NumberVar::Timestamp},
    {"Payload", Tok::kStringVar, StringVar::Payload, NumberVar::Timestamp},
    {"EnvVersion", Tok::kStringVar, StringVar::EnvVersion, NumberVar::Timestamp},
    {"Hostname", Tok::kStringVar, StringVar::Hostname, NumberVar::Timestamp},
    {"Timestamp", Tok::kNumberVar, StringVar::Type, NumberVar::Timestamp},
    {"Severity", Tok::kNumberVar, StringVar::Type, NumberVar::Severity},
    {"Pid", Tok::kNumberVar, StringVar::Type, NumberVar::Pid},
    {"Fields", Tok::kField, StringVar::Type, NumberVar::Timestamp},
    {"TRUE", Tok::kTrue, StringVar::Type, NumberVar::Timestamp},
    {"FALSE", Tok::kFalse, StringVar::Type, NumberVar::Timestamp},
    {"NIL", Tok::kNil, StringVar::Type, NumberVar::Timestamp},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The parse tree, kept only until the branch program is emitted. Constant subtrees are
// folded while parsing (tests have no side effects), so TRUE/FALSE never reach the program.
struct Node {
  enum Kind : uint8_t { kConst, kTest, kAnd, kOr };
  Kind kind = kConst;
  bool value = false;          // kConst
  uint32_t test = 0;           // kTest: index into Parser::tests_
  std::vector<Node> children;  // kAnd, kOr: at least two, none constant
};

// What compile() produces.
struct Compiled {
  std::vector<Test> tests;
  uint32_t entry = kReject;
  // What Test::name and Test::text point into. A deque never moves its elements.
  std::deque<std::string> strings;
  std::vector<std::unique_ptr<re2::RE2>> regexes;
};

// Recursive descent over a one-token lookahead lexer. Recursion happens only at '(', so its
// depth is bounded by MatcherLimits::max_depth.
class Parser {
 public:
  Parser(std::string_view expr, const MatcherLimits& limits, Compiled& program)
      : expr_(expr), limits_(limits), program_(program) {}

  // Parses the whole expression and emits the program. False with error() set on failure.
  bool run() {
    if (expr_.size() > limits_.max_length) {
      return fail(limits_.max_length, "expression is " + std::to_string(expr_.size()) +
                                          " bytes long, over the limit of " +
                                          std::to_string(limits_.max_length));
    }
    if (!advance()) return false;
    if (tok_.kind == Tok::kEnd) return fail(tok_.pos, "empty expression");
    Node root;
    if (!parseOr(0, root)) return false;
    if (tok_.kind == Tok::kRParen) return fail(tok_.pos, "')' without a matching '('");
    if (tok_.kind != Tok::kEnd) {
      // Heka accepted `A B` and kept only B; silently dropping a test is never wanted.
      return fail(tok_.pos, "expected '&&', '||' or the end of the expression, found " +
                                found(tok_) + " (join expressions with '&&' or '||')");
    }
    if (tests_.size() >= kReject) return fail(0, "too many tests");
    program_.tests.reserve(tests_.size());
    program_.entry = emit(root, kAccept, kReject);
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool fail(size_t pos, const std::string& message) {
    if (error_.empty()) error_ = "column " + std::to_string(pos + 1) + ": " + message;
    return false;
  }

  // How an error message shows a token: its source text, shortened, control bytes blanked.
  std::string found(const Token& t) const {
    if (t.kind == Tok::kEnd) return "the end of the expression";
    std::string_view raw = expr_.substr(t.pos, t.end - t.pos);
    constexpr size_t kMax = 32;
    std::string out(raw.substr(0, kMax));
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    if (raw.size() > kMax) out += "...";
    return out;
  }

  // ---- Lexer ----

  bool advance() {
    tok_ = Token();
    while (pos_ < expr_.size() && IsSpace(expr_[pos_])) {
      ++pos_;
    }
    tok_.pos = pos_;
    if (pos_ == expr_.size()) {
      tok_.end = pos_;
      return true;
    }
    const char c = expr_[pos_];
    const char next = pos_ + 1 < expr_.size() ? expr_[pos_ + 1] : '\0';
    bool ok = true;
    switch (c) {
      case '(':
        tok_.kind = Tok::kLParen;
        ++pos_;
        break;
      case ')':
        tok_.kind = Tok::kRParen;
        ++pos_;
        break;
      case '&':
        if (next != '&') return fail(pos_, "expected '&&'");
        tok_.kind = Tok::kAnd;
        pos_ += 2;
        break;
      case '|':
        if (next != '|') return fail(pos_, "expected '||'");
        tok_.kind = Tok::kOr;
        pos_ += 2;
        break;
      case '=':
        if (next == '=') {
          setOp(Op::kEq, 2);
        } else if (next == '~') {
          setOp(Op::kMatch, 2);
        } else {
          return fail(pos_, "'=' is not an operator (did you mean '=='?)");
        }
        break;
      case '!':
        if (next == '=') {
          setOp(Op::kNe, 2);
        } else if (next == '~') {
          setOp(Op::kNotMatch, 2);
        } else {
          return fail(pos_, "expected '!=' or '!~' ('!' alone is not an operator)");
        }
        break;
      case '<':
        setOp(next == '=' ? Op::kLe : Op::kLt, next == '=' ? 2 : 1);
        break;
      case '>':
        setOp(next == '=' ? Op::kGe : Op::kGt, next == '=' ? 2 : 1);
        break;
      case '\'':
      case '"':
        ok = lexQuoted(c, Tok::kString, "string");
        break;
      case '/':
        ok = lexQuoted('/', Tok::kRegex, "regex");
        break;
      default:
        if (IsDigit(c) || c == '.') {
          ok = lexNumber();
        } else if (IsIdentChar(c)) {
          ok = lexWord();
        } else if (c == '-' || c == '+') {
          return fail(pos_, std::string("unexpected '") + c +
                                "' (number literals have no sign, as in Heka)");
        } else if (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f) {
          return fail(pos_, std::string("unexpected character '") + c + "'");
        } else {
          static constexpr char kHex[] = "0123456789abcdef";
          const auto u = static_cast<unsigned char>(c);
          return fail(pos_, std::string("unexpected byte 0x") + kHex[u >> 4] + kHex[u & 0xf]);
        }
    }
    tok_.end = pos_;
    return ok;
  }

  void setOp(Op op, size_t length) {
    tok_.kind = Tok::kOp;
    tok_.op = op;
    pos_ += length;
  }

  // '…', "…" or /…/. A backslash before the closing character makes it part of the text;
  // a backslash before anything else is kept together with that character (so `\\` stays
  // two backslashes and `\d` reaches RE2 intact), exactly as Heka's lexer does.
  bool lexQuoted(char close, Tok kind, const char* what) {
    const size_t start = pos_;
    size_t i = pos_ + 1;
    std::string text;
    while (true) {
      if (i >= expr_.size()) {
        return fail(start, std::string("unterminated ") + what + " (no closing " + close + ")");
      }
      const char c = expr_[i];
      if (c == '\\' && i + 1 < expr_.size()) {
        if (expr_[i + 1] != close) text += '\\';
        text += expr_[i + 1];
        i += 2;
        continue;
      }
      if (c == '\\') {
        ++i;  // A backslash as the last byte: unterminated, reported above.
        continue;
      }
      if (c == close) break;
      text += c;
      ++i;
    }
    tok_.kind = kind;
    tok_.text = std::move(text);
    pos_ = i + 1;
    return true;
  }

  // A run of digits, '.', 'e', '+', '-' (Heka's number characters), which must parse whole.
  bool lexNumber() {
    const size_t start = pos_;
    while (pos_ < expr_.size() && IsNumberChar(expr_[pos_])) {
      ++pos_;
    }
    const char* first = expr_.data() + start;
    const char* last = expr_.data() + pos_;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(first, last, value, std::chars_format::general);
    const std::string text(first, last);
    if (ec == std::errc::result_out_of_range) {
      return fail(start, "number " + text + " is out of range");
    }
    if (ec != std::errc() || ptr != last) {
      // Heka logged this and silently used 0, so a typo would match the wrong events.
      return fail(start, "'" + text + "' is not a number");
    }
    tok_.kind = Tok::kNumber;
    tok_.number = value;
    return true;
  }

  bool lexWord() {
    const size_t start = pos_;
    while (pos_ < expr_.size() && IsIdentChar(expr_[pos_])) {
      ++pos_;
    }
    const std::string_view word = expr_.substr(start, pos_ - start);
    const Keyword* keyword = nullptr;
    for (const Keyword& k : kKeywords) {
      if (word == k.word) keyword = &k;
    }
    if (keyword == nullptr) {
      std::string message = "unknown identifier '" + std::string(word) + "'";
      for (const Keyword& k : kKeywords) {
        if (EqualsIgnoreCase(word, k.word)) {
          message += std::string(" (did you mean '") + k.word + "'? names are case-sensitive)";
        }
      }
      return fail(start, message);
    }
    tok_.kind = keyword->kind;
    tok_.string_var = keyword->string_var;
    tok_.number_var = keyword->number_var;
    if (keyword->kind == Tok::kField) return lexFieldBrackets();
    return true;
  }

  // After `Fields`: `[name]`, then up to two `[digits]` (occurrence, element), with nothing
  // in between. The name is every byte up to the next ']'.
  bool lexFieldBrackets() {
    if (pos_ >= expr_.size() || expr_[pos_] != '[') {
      return fail(pos_, "expected '[' right after 'Fields'");
    }
    const size_t name_start = pos_ + 1;
    const size_t close = expr_.find(']', name_start);
    if (close == std::string_view::npos) {
      return fail(pos_, "unterminated 'Fields[' (no closing ']')");
    }
    if (close == name_start) return fail(pos_, "empty field name in 'Fields[]'");
    tok_.text = std::string(expr_.substr(name_start, close - name_start));
    pos_ = close + 1;
    uint32_t* indexes[] = {&tok_.occurrence, &tok_.element};
    for (uint32_t* index : indexes) {
      if (pos_ >= expr_.size() || expr_[pos_] != '[') return true;
      if (!lexIndex(*index)) return false;
    }
    if (pos_ < expr_.size() && expr_[pos_] == '[') {
      return fail(pos_, "too many indexes: Fields[name][occurrence][element] is the most");
    }
    return true;
  }

  bool lexIndex(uint32_t& index) {
    const size_t open = pos_;
    size_t i = open + 1;
    uint64_t value = 0;
    while (i < expr_.size() && IsDigit(expr_[i])) {
      value = value * 10 + static_cast<uint64_t>(expr_[i] - '0');
      if (value > std::numeric_limits<uint32_t>::max()) {
        return fail(open + 1, "field index is too large");
      }
      ++i;
    }
    if (i >= expr_.size()) return fail(open, "unterminated field index (no closing ']')");
    if (expr_[i] != ']') return fail(i, "a field index must be decimal digits");
    if (i == open + 1) return fail(open, "empty field index '[]'");
    index = static_cast<uint32_t>(value);
    pos_ = i + 1;
    return true;
  }

  // ---- Parser ----

  // or := and ('||' and)*
  bool parseOr(uint32_t depth, Node& out) {
    std::vector<Node> children;
    bool any_true = false;
    while (true) {
      Node operand;
      if (!parseAnd(depth, operand)) return false;
      if (operand.kind == Node::kConst) {
        any_true = any_true || operand.value;
      } else if (operand.kind == Node::kOr) {
        for (Node& c : operand.children) {
          children.push_back(std::move(c));
        }
      } else {
        children.push_back(std::move(operand));
      }
      if (tok_.kind != Tok::kOr) break;
      if (!advance()) return false;
    }
    combine(Node::kOr, any_true, std::move(children), out);
    return true;
  }

  // and := primary ('&&' primary)*
  bool parseAnd(uint32_t depth, Node& out) {
    std::vector<Node> children;
    bool any_false = false;
    while (true) {
      Node operand;
      if (!parsePrimary(depth, operand)) return false;
      if (operand.kind == Node::kConst) {
        any_false = any_false || !operand.value;
      } else if (operand.kind == Node::kAnd) {
        for (Node& c : operand.children) {
          children.push_back(std::move(c));
        }
      } else {
        children.push_back(std::move(operand));
      }
      if (tok_.kind != Tok::kAnd) break;
      if (!advance()) return false;
    }
    combine(Node::kAnd, any_false, std::move(children), out);
    return true;
  }

  // Builds an n-ary node from non-constant children. `decided`: some operand was the
  // absorbing constant (TRUE for '||', FALSE for '&&'); the other constants were dropped.
  static void combine(Node::Kind kind, bool decided, std::vector<Node> children, Node& out) {
    if (decided || children.empty()) {
      out.kind = Node::kConst;
      // An absorbing constant wins; with only neutral constants the result is the neutral one.
      out.value = (kind == Node::kOr) == decided;
      return;
    }
    if (children.size() == 1) {
      out = std::move(children[0]);
      return;
    }
    out.kind = kind;
    out.children = std::move(children);
  }

  // primary := '(' or ')' | TRUE | FALSE | test
  bool parsePrimary(uint32_t depth, Node& out) {
    switch (tok_.kind) {
      case Tok::kLParen: {
        const size_t open = tok_.pos;
        if (depth >= limits_.max_depth) {
          return fail(open, "parentheses nested deeper than the limit of " +
                                std::to_string(limits_.max_depth));
        }
        if (!advance() || !parseOr(depth + 1, out)) return false;
        if (tok_.kind != Tok::kRParen) {
          return fail(tok_.pos, "expected ')' to close the '(' at column " +
                                    std::to_string(open + 1) + ", found " + found(tok_));
        }
        return advance();
      }
      case Tok::kTrue:
      case Tok::kFalse:
        out.kind = Node::kConst;
        out.value = tok_.kind == Tok::kTrue;
        return advance();
      case Tok::kNil:
        return fail(tok_.pos, "NIL can only follow 'Fields[...] ==' or 'Fields[...] !='");
      case Tok::kStringVar:
      case Tok::kNumberVar:
      case Tok::kField:
        return parseTest(out);
      default:
        return fail(tok_.pos, "expected a test, TRUE, FALSE or '(', found " + found(tok_));
    }
  }

  std::string_view keep(std::string s) { return program_.strings.emplace_back(std::move(s)); }

  // test := variable operator literal, with the literal kinds each variable allows.
  bool parseTest(Node& out) {
    const Token subject = std::move(tok_);
    const std::string subject_text = found(subject);
    if (!advance()) return false;
    if (tok_.kind != Tok::kOp) {
      return fail(tok_.pos,
                  "expected an operator after " + subject_text + ", found " + found(tok_));
    }
    const Token op = std::move(tok_);
    const std::string after = std::string(" after '") + OpText(op.op) + "', found ";
    if (!advance()) return false;
    Token& value = tok_;

    Test test;
    test.op = op.op;
    switch (subject.kind) {
      case Tok::kStringVar:
        test.subject = Subject::kStringVar;
        test.string_var = subject.string_var;
        if (IsRegexOp(op.op) && value.kind != Tok::kRegex) {
          return fail(value.pos, "expected a /regex/" + after + found(value));
        }
        if (!IsRegexOp(op.op) && value.kind != Tok::kString) {
          return fail(value.pos, "expected a quoted string" + after + found(value));
        }
        break;
      case Tok::kNumberVar:
        test.subject = Subject::kNumberVar;
        test.number_var = subject.number_var;
        if (IsRegexOp(op.op)) {
          return fail(op.pos, std::string("'") + OpText(op.op) + "' cannot be used with " +
                                  subject_text + ", which is a number");
        }
        if (value.kind != Tok::kNumber) {
          return fail(value.pos, "expected a number" + after + found(value));
        }
        break;
      default:
        test.subject = Subject::kField;
        test.name = keep(subject.text);
        test.occurrence = subject.occurrence;
        test.element = subject.element;
        if (!checkFieldLiteral(op.op, value, after)) return false;
        break;
    }

    switch (value.kind) {
      case Tok::kString:
        test.literal = Literal::kString;
        test.text = keep(std::move(value.text));
        break;
      case Tok::kNumber:
        test.literal = Literal::kNumber;
        test.number = value.number;
        break;
      case Tok::kTrue:
        test.literal = Literal::kTrue;
        test.text = "TRUE";
        break;
      case Tok::kFalse:
        test.literal = Literal::kFalse;
        test.text = "FALSE";
        break;
      case Tok::kNil:
        test.literal = Literal::kNil;
        break;
      default:
        test.literal = Literal::kRegex;
        if (!compileRegex(value, test)) return false;
        break;
    }
    out.kind = Node::kTest;
    out.test = static_cast<uint32_t>(tests_.size());
    tests_.push_back(test);
    return advance();
  }

  bool checkFieldLiteral(Op op, const Token& value, const std::string& after) {
    if (IsRegexOp(op)) {
      if (value.kind == Tok::kRegex) return true;
      return fail(value.pos, "expected a /regex/" + after + found(value));
    }
    switch (value.kind) {
      case Tok::kString:
      case Tok::kNumber:
        return true;
      case Tok::kTrue:
      case Tok::kFalse:
        if (op == Op::kEq) return true;
        return fail(value.pos, "TRUE and FALSE can only follow '=='");
      case Tok::kNil:
        if (op == Op::kEq || op == Op::kNe) return true;
        return fail(value.pos, "NIL can only follow '==' or '!='");
      default:
        break;
    }
    const char* expected = op == Op::kEq   ? "a quoted string, number, TRUE, FALSE or NIL"
                           : op == Op::kNe ? "a quoted string, number or NIL"
                                           : "a quoted string or number";
    return fail(value.pos, std::string("expected ") + expected + after + found(value));
  }

  bool compileRegex(Token& value, Test& test) {
    std::string_view literal;
    test.regex_kind = ClassifyRegex(value.text, literal);
    if (test.regex_kind != RegexKind::kRe2) {
      test.text = keep(std::string(literal));
      return true;
    }
    RE2::Options options;
    options.set_log_errors(false);  // The error goes into the config error message instead.
    auto re = std::make_unique<re2::RE2>(value.text, options);
    if (!re->ok()) return fail(value.pos, "invalid regex: " + re->error());
    test.re = re.get();
    program_.regexes.push_back(std::move(re));
    return true;
  }

  // ---- Emitter ----

  // Appends the tests of `node` so that control reaches `if_true` when it holds and
  // `if_false` when it does not; returns the index to start at. Operands are emitted right
  // to left, so every branch goes to a lower index and evaluation always terminates.
  uint32_t emit(const Node& node, uint32_t if_true, uint32_t if_false) {
    switch (node.kind) {
      case Node::kConst:
        return node.value ? if_true : if_false;
      case Node::kTest: {
        Test test = tests_[node.test];
        test.on_true = if_true;
        test.on_false = if_false;
        program_.tests.push_back(test);
        return static_cast<uint32_t>(program_.tests.size() - 1);
      }
      case Node::kAnd: {
        uint32_t entry = if_true;
        for (auto it = node.children.rbegin(); it != node.children.rend(); ++it) {
          entry = emit(*it, entry, if_false);
        }
        return entry;
      }
      case Node::kOr: {
        uint32_t entry = if_false;
        for (auto it = node.children.rbegin(); it != node.children.rend(); ++it) {
          entry = emit(*it, if_true, entry);
        }
        return entry;
      }
    }
    return if_false;
  }

  std::string_view expr_;
  const MatcherLimits& limits_;
  Compiled& program_;
  size_t pos_ = 0;
  Token tok_;
  std::vector<Test> tests_;
  std::string error_;
};

bool RegexTest(const Test& t, std::string_view s) {
  switch (t.regex_kind) {
    case RegexKind::kPrefix:
      return s.substr(0, t.text.size()) == t.text;
    case RegexKind::kSuffix:
      return s.size() >= t.text.size() && s.substr(s.size() - t.text.size()) == t.text;
    case RegexKind::kContains:
      return s.find(t.text) != std::string_view::npos;
    case RegexKind::kExact:
      return s == t.text;
    case RegexKind::kRe2:
      return t.re->Match(s, 0, s.size(), RE2::UNANCHORED, nullptr, 0);
  }
  return false;
}

// A string value against any literal. Numbers never equal a string (Heka); TRUE/FALSE
// compare as their keyword text (Heka quirk, kept).
bool StringTest(const Test& t, std::string_view s) {
  if (t.literal == Literal::kNumber) return false;
  switch (t.op) {
    case Op::kEq:
      return s == t.text;
    case Op::kNe:
      return s != t.text;
    case Op::kLt:
      return s < t.text;
    case Op::kLe:
      return s <= t.text;
    case Op::kGt:
      return s > t.text;
    case Op::kGe:
      return s >= t.text;
    case Op::kMatch:
      return RegexTest(t, s);
    case Op::kNotMatch:
      return !RegexTest(t, s);
  }
  return false;
}

// A numeric value (as a double, like Heka) against any literal; only numbers can match.
bool NumberTest(const Test& t, double d) {
  if (t.literal != Literal::kNumber) return false;
  switch (t.op) {
    case Op::kEq:
      return d == t.number;
    case Op::kNe:
      return d != t.number;
    case Op::kLt:
      return d < t.number;
    case Op::kLe:
      return d <= t.number;
    case Op::kGt:
      return d > t.number;
    case Op::kGe:
      return d >= t.number;
    default:
      return false;
  }
}

bool FieldTest(const Test& t, const MessageView& m) {
  FieldValue v;
  if (!m.field(t.name, t.occurrence, t.element, v)) {
    return t.literal == Literal::kNil && t.op == Op::kEq;
  }
  if (t.literal == Literal::kNil) return t.op == Op::kNe;
  switch (v.type) {
    case FieldType::String:
    case FieldType::Bytes:
      return StringTest(t, v.s);
    case FieldType::Integer:
      return NumberTest(t, static_cast<double>(v.i));
    case FieldType::Double:
      return NumberTest(t, v.d);
    case FieldType::Bool:
      // Heka ignores the operator and any non-boolean literal: `== TRUE` asks "is it
      // true", everything else (`== FALSE`, `== 'x'`, `> 3`, `=~ /x/`) "is it false".
      return t.literal == Literal::kTrue ? v.b : !v.b;
  }
  return false;
}

bool RunTest(const Test& t, const MessageView& m) {
  switch (t.subject) {
    case Subject::kStringVar:
      return StringTest(t, m.stringVar(t.string_var));
    case Subject::kNumberVar:
      return NumberTest(t, static_cast<double>(m.numberVar(t.number_var)));
    case Subject::kField:
      return FieldTest(t, m);
  }
  return false;
}

}  // namespace

struct Matcher::Program : Compiled {};

Matcher::Matcher(std::string source, std::unique_ptr<Program> program)
    : source_(std::move(source)), program_(std::move(program)) {}

Matcher::~Matcher() = default;

std::unique_ptr<Matcher> Matcher::compile(std::string_view expr, std::string& error,
                                          const MatcherLimits& limits) {
  auto program = std::make_unique<Program>();
  Parser parser(expr, limits, *program);
  if (!parser.run()) {
    error = parser.error();
    return nullptr;
  }
  error.clear();
  return std::unique_ptr<Matcher>(new Matcher(std::string(expr), std::move(program)));
}

bool Matcher::matches(const MessageView& m) const {
  const std::vector<Test>& tests = program_->tests;
  uint32_t pc = program_->entry;
  while (pc < kReject) {
    const Test& t = tests[pc];
    pc = RunTest(t, m) ? t.on_true : t.on_false;
  }
  return pc == kAccept;
}

bool Matcher::readsOnlyType() const {
  for (const Test& t : program_->tests) {
    if (t.subject != Subject::kStringVar || t.string_var != StringVar::Type) return false;
  }
  return true;
}

size_t Matcher::regexCount() const {
  size_t n = 0;
  for (const Test& t : program_->tests) {
    if (t.literal == Literal::kRegex && t.regex_kind == RegexKind::kRe2) ++n;
  }
  return n;
}

}  // namespace ferry
