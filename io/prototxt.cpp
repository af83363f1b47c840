#include "io/prototxt.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <set>
#include <utility>

namespace crema::io {

namespace {

struct Token {
  enum class Kind { End, Ident, Number, String, Symbol };
  Kind kind = Kind::End;
  std::string text;  // the identifier or number as written, a string's unescaped bytes, or the symbol
  Mark mark;
};

// C's one-letter escapes: the letter after the backslash, and the character.
constexpr std::pair<char, char> kEscapes[] = {{'a', '\a'}, {'b', '\b'},   {'f', '\f'}, {'n', '\n'},   {'r', '\r'}, {'t', '\t'},
                                              {'v', '\v'}, {'\\', '\\'}, {'"', '"'}, {'\'', '\''}, {'?', '?'}};

const char* escaped_char(char letter) {
  for (const auto& e : kEscapes)
    if (e.first == letter) return &e.second;
  return nullptr;
}

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Appends code point `cp` as UTF-8 (for \u and \U escapes).
void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// protobuf's text tokenizer: identifiers, numbers, quoted strings, one-character
// symbols; `#` comments and whitespace in between.
class Lexer {
 public:
  Lexer(const std::string& text, std::shared_ptr<const std::string> file) : text_(text), file_(std::move(file)) {
    if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;  // a UTF-8 byte order mark
  }

  const Token& peek() {
    if (!has_peeked_) {
      peeked_ = lex();
      has_peeked_ = true;
    }
    return peeked_;
  }
  Token next() {
    peek();
    has_peeked_ = false;
    return std::move(peeked_);
  }
  Mark here() const { return Mark{file_, line_, col_}; }

 private:
  char cur() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  char at(size_t offset) const { return pos_ + offset < text_.size() ? text_[pos_ + offset] : '\0'; }
  bool done() const { return pos_ >= text_.size(); }
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  void skip_space_and_comments() {
    while (!done()) {
      const char c = cur();
      if (c == '#') {
        while (!done() && cur() != '\n') advance();
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        advance();
      } else {
        break;
      }
    }
  }

  Token lex() {
    skip_space_and_comments();
    Token t;
    t.mark = here();
    if (done()) return t;
    const char c = cur();
    if (is_ident_start(c)) {
      t.kind = Token::Kind::Ident;
      while (!done() && is_ident_char(cur())) t.text += cur(), advance();
    } else if (is_digit(c) || (c == '.' && is_digit(at(1)))) {
      t.kind = Token::Kind::Number;
      t.text = lex_number(t.mark);
    } else if (c == '"' || c == '\'') {
      t.kind = Token::Kind::String;
      t.text = lex_string(t.mark);
    } else if (std::strchr("{}<>[]:,;-", c)) {
      t.kind = Token::Kind::Symbol;
      t.text = std::string(1, c);
      advance();
    } else {
      const auto u = static_cast<unsigned char>(c);
      throw ConfigError(t.mark, "", std::isprint(u) ? "unexpected character '" + std::string(1, c) + "'"
                                                    : "unexpected byte " + std::to_string(u) + " (not text)");
    }
    return t;
  }

  // Decimal integers and floats keep their spelling (a trailing f, which only
  // protobuf knows, is dropped); hex and octal integers are rewritten in decimal,
  // the only integer spelling the rest of crema reads.
  std::string lex_number(const Mark& mark) {
    std::string s;
    while (!done()) {
      const char c = cur();
      const bool exponent_sign = (c == '+' || c == '-') && !s.empty() && (s.back() == 'e' || s.back() == 'E') &&
                                 !(s.size() > 1 && (s[1] == 'x' || s[1] == 'X'));
      if (!is_ident_char(c) && c != '.' && !exponent_sign) break;
      s += c;
      advance();
    }
    auto invalid = [&]() -> std::string { throw ConfigError(mark, "", "invalid number '" + s + "'"); };
    const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const bool octal = s.size() > 1 && s[0] == '0' && s.find_first_not_of("01234567") == std::string::npos;
    if (hex || octal) {
      if (hex && s.find_first_not_of("0123456789abcdefABCDEF", 2) != std::string::npos) return invalid();
      errno = 0;
      const unsigned long long v = std::strtoull(s.c_str() + (hex ? 2 : 1), nullptr, hex ? 16 : 8);
      if (errno == ERANGE) return invalid();
      return std::to_string(v);
    }
    // protobuf reads a leading zero as octal and refuses the rest ("09", "00.5").
    if (s.size() > 1 && s[0] == '0' && is_digit(s[1]))
      throw ConfigError(mark, "",
                        "invalid number '" + s +
                            "': a number with a leading zero is octal in a prototxt (protobuf "
                            "refuses this one); leave the zero out");
    std::string body = s;
    if (body.size() > 1 && (body.back() == 'f' || body.back() == 'F')) body.pop_back();
    const char* begin = body.c_str();
    char* end = nullptr;
    std::strtod(begin, &end);
    // strtod also reads hex floats and "infinity"; protobuf's number tokens do not.
    if (*end != '\0' || body.find_first_of("xXpP") != std::string::npos || is_ident_start(body.back())) return invalid();
    return body;
  }

  std::string lex_string(const Mark& mark) {
    const char closing = cur();
    advance();
    std::string out;
    for (;;) {
      if (done() || cur() == '\n')
        throw ConfigError(mark, "", std::string("unterminated string: expected a closing ") + closing +
                                        " on the same line");
      const char c = cur();
      if (c == closing) {
        advance();
        return out;
      }
      if (c != '\\') {
        out += c;
        advance();
        continue;
      }
      const Mark esc_mark = here();
      advance();
      if (done() || cur() == '\n') continue;  // reported as an unterminated string
      const char e = cur();
      advance();
      if (const char* simple = escaped_char(e)) {
        out += *simple;
        continue;
      }
      if (e == 'x' || e == 'X' || e == 'u' || e == 'U') {
        const bool unicode = e == 'u' || e == 'U';
        const int max_digits = e == 'u' ? 4 : e == 'U' ? 8 : 2;
        std::string digits;
        while (static_cast<int>(digits.size()) < max_digits && std::isxdigit(static_cast<unsigned char>(cur())))
          digits += cur(), advance();
        if (digits.empty() || (unicode && static_cast<int>(digits.size()) != max_digits))
          throw ConfigError(esc_mark, "", std::string("escape \\") + e + " needs " +
                                              (unicode ? std::to_string(max_digits) : "1 or 2") + " hex digits");
        const unsigned long v = std::strtoul(digits.c_str(), nullptr, 16);
        if (unicode)
          append_utf8(out, v);
        else
          out += static_cast<char>(v);
      } else if (e >= '0' && e <= '7') {
        int v = e - '0';
        for (int k = 0; k < 2 && cur() >= '0' && cur() <= '7'; ++k) v = v * 8 + (cur() - '0'), advance();
        out += static_cast<char>(v);
      } else {
        throw ConfigError(esc_mark, "", std::string("unknown escape sequence '\\") + e + "' (write a backslash as \\\\)");
      }
    }
  }

  const std::string& text_;
  std::shared_ptr<const std::string> file_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
  Token peeked_;
  bool has_peeked_ = false;
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Token::Kind::End: return "the end of the file";
    case Token::Kind::String: return "a quoted string";
    default: return "'" + t.text + "'";
  }
}

bool is_symbol(const Token& t, char c) { return t.kind == Token::Kind::Symbol && t.text[0] == c; }
bool opens_message(const Token& t) { return is_symbol(t, '{') || is_symbol(t, '<'); }

class Parser {
 public:
  Parser(const std::string& text, const std::string& name)
      : file_(std::make_shared<const std::string>(name)), lex_(text, file_) {}
  static constexpr int kMaxDepth = 100;

  Node parse() {
    Node root = Node::map(Mark{file_, 1, 1});
    parse_fields(root, nullptr);
    root.set_path("");
    return root;
  }

 private:
  int depth_ = 0;
  [[noreturn]] static void fail(const Mark& mark, const std::string& message) { throw ConfigError(mark, "", message); }

  // Fields of one message up to its closing symbol (`open` is null for the file).
  void parse_fields(Node& message, const Token* open) {
    const char close = open ? (open->text[0] == '{' ? '}' : '>') : '\0';
    for (;;) {
      Token t = lex_.next();
      if (t.kind == Token::Kind::End) {
        if (!open) return;
        fail(t.mark, std::string("expected '") + close + "' to close the message opened at line " +
                         std::to_string(open->mark.line) + ", column " + std::to_string(open->mark.col) +
                         ", got the end of the file");
      }
      if (open && is_symbol(t, close)) return;
      if (is_symbol(t, '}') || is_symbol(t, '>'))
        fail(t.mark, open ? std::string("expected '") + close + "' to close the message opened at line " +
                                std::to_string(open->mark.line) + ", got '" + t.text + "'"
                          : "unexpected '" + t.text + "': no message is open here");
      if (is_symbol(t, '['))
        fail(t.mark, "extension fields ([name]) are not supported; write the field by its plain name");
      if (t.kind != Token::Kind::Ident) fail(t.mark, "expected a field name, got " + describe(t));
      Node value = parse_field_value(t);
      value.set_key_mark(t.mark);
      add_field(message, t.text, std::move(value));
      const Token& sep = lex_.peek();
      if (is_symbol(sep, ',') || is_symbol(sep, ';')) lex_.next();
    }
  }

  // After a field name: `: value`, `: { ... }`, `{ ... }`, `: [ ... ]` or `[ {...} ]`.
  Node parse_field_value(const Token& key) {
    const Token& after = lex_.peek();
    if (opens_message(after)) return parse_message(key.mark);
    if (is_symbol(after, '[')) return parse_list(key);
    if (!is_symbol(after, ':'))
      fail(after.mark, "expected ':' or '{' after the field name '" + key.text + "', got " + describe(after));
    lex_.next();
    const Token& value = lex_.peek();
    if (opens_message(value)) return parse_message(key.mark);
    if (is_symbol(value, '[')) return parse_list(key);
    return parse_scalar(key);
  }

  // `mark` by value: it may be the lookahead token's, which reading the '{' replaces.
  Node parse_message(Mark mark) {
    // Real configs nest a few levels; a runaway file must not exhaust the stack.
    if (++depth_ > kMaxDepth) throw ConfigError(mark, "", "messages nested more than 100 levels deep");
    const Token open = lex_.next();
    Node message = Node::map(mark);
    parse_fields(message, &open);
    --depth_;
    return message;
  }

  // protobuf's list syntax for repeated fields: `dim: [1, 2]`, `layer [{...}, {...}]`.
  Node parse_list(const Token& key) {
    const Token open = lex_.next();
    Node list = Node::seq(open.mark);
    if (is_symbol(lex_.peek(), ']')) {
      lex_.next();
      return list;
    }
    for (;;) {
      const bool message = opens_message(lex_.peek());
      Node value = message ? parse_message(lex_.peek().mark) : parse_scalar(key);
      value.set_key_mark(key.mark);
      list.push_back(std::move(value));
      const Token sep = lex_.next();
      if (is_symbol(sep, ']')) return list;
      if (!is_symbol(sep, ','))
        fail(sep.mark, "expected ',' or ']' in the list of '" + key.text + "' opened at line " +
                           std::to_string(open.mark.line) + ", got " + describe(sep));
    }
  }

  Node parse_scalar(const Token& key) {
    Token t = lex_.next();
    const Mark mark = t.mark;
    switch (t.kind) {
      case Token::Kind::String: {
        std::string s = t.text;
        while (lex_.peek().kind == Token::Kind::String) s += lex_.next().text;  // "a" "b" is "ab"
        return Node::scalar(s, mark);
      }
      case Token::Kind::Number:
      case Token::Kind::Ident:
        return Node::scalar(t.text, mark);
      case Token::Kind::Symbol:
        if (t.text == "-") {
          const Token n = lex_.next();
          const std::string l = lowercase(n.text);
          if (n.kind == Token::Kind::Number || (n.kind == Token::Kind::Ident && (l == "inf" || l == "infinity" || l == "nan")))
            return Node::scalar("-" + n.text, mark);
          fail(n.mark, "expected a number after '-', got " + describe(n));
        }
        break;
      case Token::Kind::End:
        break;
    }
    fail(mark, "expected a value for '" + key.text + "' (a number, a quoted string, a name or { ... }), got " +
                   describe(t));
  }

  // A field written again (or given as a list) becomes a list of all its values.
  static void add_field(Node& message, const std::string& key, Node value) {
    Node* existing = message.find(key);
    if (!existing) {
      message.set(key, std::move(value));
      return;
    }
    if (!existing->is_seq()) {
      Node list = Node::seq(existing->mark());
      list.set_key_mark(existing->key_mark());
      list.push_back(std::move(*existing));
      *existing = std::move(list);
    }
    if (value.is_seq()) {
      for (auto& item : value.items()) existing->push_back(std::move(item));
    } else {
      existing->push_back(std::move(value));
    }
  }

  std::shared_ptr<const std::string> file_;
  Lexer lex_;
};

// ---- writing ----------------------------------------------------------------------

bool is_number_text(const std::string& s) {
  const std::string l = lowercase(s[0] == '-' ? s.substr(1) : s);
  if (l == "inf" || l == "infinity" || l == "nan") return true;
  if (l.empty() || !(is_digit(l[0]) || (l[0] == '.' && l.size() > 1 && is_digit(l[1])))) return false;
  char* end = nullptr;
  std::strtod(l.c_str(), &end);
  return *end == '\0' && l.find_first_of("xp") == std::string::npos;
}

bool is_enum_name(const std::string& s) {
  if (s.empty() || !std::isupper(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isupper(static_cast<unsigned char>(c)) && !is_digit(c) && c != '_') return false;
  return true;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const auto letter = std::find_if(std::begin(kEscapes), std::end(kEscapes), [c](const auto& e) { return e.second == c; });
    if (letter != std::end(kEscapes) && c != '\'' && c != '?') {
      out += '\\';
      out += letter->first;
    } else if (u < 0x20 || u == 0x7F) {
      const char octal[] = {'\\', static_cast<char>('0' + (u >> 6)), static_cast<char>('0' + ((u >> 3) & 7)),
                            static_cast<char>('0' + (u & 7)), '\0'};
      out += octal;
    } else {
      out += c;  // UTF-8 stays as it is
    }
  }
  return out + "\"";
}

// A scalar as protobuf reads it back: strings quoted, numbers, bools and enum names
// bare, with YAML-only spellings (.inf, yes, +1) rewritten to protobuf's.
std::string format_scalar(const std::string& key, const std::string& v) {
  if (prototxt_string_field(key) || v.empty()) return quote(v);
  const std::string l = lowercase(v);
  if (l == ".inf" || l == "+.inf" || l == "+inf") return "inf";
  if (l == "-.inf") return "-inf";
  if (l == ".nan") return "nan";
  std::string unsigned_v = v[0] == '+' ? v.substr(1) : v;
  if (!unsigned_v.empty() && is_number_text(unsigned_v)) {
    // YAML's 010 is ten, a prototxt's eight: leading zeros go.
    const size_t digits = unsigned_v[0] == '-' ? 1 : 0;
    while (unsigned_v.size() > digits + 1 && unsigned_v[digits] == '0' && is_digit(unsigned_v[digits + 1]))
      unsigned_v.erase(digits, 1);
    return unsigned_v;
  }
  if (v == "true" || v == "false" || v == "True" || v == "False" || v == "t" || v == "f") return v;
  // YAML 1.1's booleans in protobuf's spelling, which Caffe's text parser reads.
  if (l == "yes" || l == "on" || v == "TRUE") return "true";
  if (l == "no" || l == "off" || v == "FALSE") return "false";
  if (is_enum_name(v)) return v;
  return quote(v);
}

void write_fields(std::string& out, const Node& message, int depth);

void write_field(std::string& out, const std::string& key, const Node& value, int depth, bool in_list) {
  const std::string indent(static_cast<size_t>(depth) * 2, ' ');
  switch (value.kind()) {
    case Node::Kind::Null: return;
    case Node::Kind::Scalar: out += indent + key + ": " + format_scalar(key, value.str()) + "\n"; return;
    case Node::Kind::Map:
      out += indent + key + " {\n";
      write_fields(out, value, depth + 1);
      out += indent + "}\n";
      return;
    case Node::Kind::Seq:
      if (in_list) value.fail("a list inside a list cannot be written as a prototxt (repeated fields hold values or messages)");
      for (const auto& item : value.items()) write_field(out, key, item, depth, true);
      return;
  }
}

void write_fields(std::string& out, const Node& message, int depth) {
  for (const auto& [key, value] : message.entries()) write_field(out, key, value, depth, false);
}

}  // namespace

Node parse_prototxt(const std::string& text, const std::string& source_name) {
  return Parser(text, source_name).parse();
}

bool prototxt_string_field(const std::string& key) {
  // caffe.proto's string fields (crema adds label_source). `param` holds strings
  // only in V1 layers (parameter names); current nets give it messages.
  static const std::set<std::string> fields = {
      "name",        "type",       "bottom",        "top",          "input",       "stage",
      "not_stage",   "net",        "train_net",     "test_net",     "lr_policy",   "snapshot_prefix",
      "regularization_type",       "mean_file",     "source",       "label_source", "file_name",
      "root_folder", "crop_mode",  "module",        "layer",        "param_str",   "param"};
  return fields.count(key) > 0;
}

std::string to_prototxt(const Node& message) {
  if (!message.is_map()) message.fail("a prototxt holds a message: a map of keys");
  std::string out;
  write_fields(out, message, 0);
  return out;
}

}  // namespace crema::io
