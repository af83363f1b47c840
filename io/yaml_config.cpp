#include "io/yaml_config.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace crema::io {

namespace {

Mark make_mark(const std::shared_ptr<const std::string>& file, const YAML::Mark& m) {
  Mark out;
  out.file = file;
  if (m.line >= 0) {
    out.line = m.line + 1;
    out.col = m.column + 1;
  }
  return out;
}

// Recursive aliases (`a: &x [*x]`) make yaml-cpp's tree cyclic and alias fan-out can
// explode its size, so depth and node count are bounded.
constexpr int kMaxDepth = 100;
constexpr long kMaxNodes = 1000000;

// yaml-cpp accepts a quoted scalar whose closing quote never comes, running to the end
// of the file (YAML does not): a missing quote on the first line swallowed the whole
// config into one value, reported as a net without layers. `at` is where yaml-cpp
// says the scalar starts, its opening quote if it has one.
void refuse_unclosed_quote(const std::string& text, const YAML::Mark& at, const Mark& mark, const std::string& path) {
  // yaml-cpp drops a byte-order mark without counting it in its positions; text in
  // UTF-16 or UTF-32 is not checked (its positions count converted characters).
  const size_t shift = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;
  if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF") || text.find('\0') < 4) return;
  if (at.pos < 0 || static_cast<size_t>(at.pos) + shift >= text.size()) return;
  const size_t open = static_cast<size_t>(at.pos) + shift;
  const char quote = text[open];
  if (quote != '"' && quote != '\'') return;
  for (size_t i = open + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;  // an escaped character, '\"' among them
    } else if (text[i] == quote) {
      if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;  // '' is a quote inside a single-quoted value
        continue;
      }
      return;
    }
  }
  throw ConfigError(mark, path,
                    std::string("this value opens a quote (") + quote +
                        ") that is never closed, so it runs to the end of the file; add the closing " + quote);
}

Node convert(const YAML::Node& y, const std::shared_ptr<const std::string>& file, const std::string& text,
             const std::string& path, int depth, long& nodes) {
  const Mark mark = make_mark(file, y.Mark());
  if (depth > kMaxDepth)  // its path repeats the loop a hundred times: its start says where
    throw ConfigError(mark, path.size() > 80 ? path.substr(0, 80) + "…" : path,
                      "nested more than 100 levels deep (a recursive YAML alias?)");
  if (++nodes > kMaxNodes) throw ConfigError(mark, path, "more than a million values (runaway YAML aliases?)");
  switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return Node::null(mark, path);
    case YAML::NodeType::Scalar:
      refuse_unclosed_quote(text, y.Mark(), mark, path);
      return Node::scalar(y.Scalar(), mark, path);
    case YAML::NodeType::Sequence: {
      Node n = Node::seq(mark, path);
      size_t i = 0;
      for (const auto& item : y) {
        n.push_back(convert(item, file, text, path + "[" + std::to_string(i) + "]", depth + 1, nodes));
        ++i;
      }
      return n;
    }
    case YAML::NodeType::Map: {
      Node n = Node::map(mark, path);
      // YAML's merge key (`<<: *base`, or `<<: [*a, *b]`): the keys of those maps that this
      // map does not write itself, an earlier map's before a later one's. yaml-cpp leaves it
      // to its reader; a net repeating a layer with a few keys changed is written so.
      std::vector<Node> merged;
      for (const auto& kv : y) {
        const Mark key_mark = make_mark(file, kv.first.Mark());
        if (!kv.first.IsScalar()) throw ConfigError(key_mark, path, "map keys must be plain names");
        refuse_unclosed_quote(text, kv.first.Mark(), key_mark, path);
        const std::string key = kv.first.Scalar();
        if (key == "<<" && kv.first.Tag() == "?") {  // a quoted '<<' is a name like any other
          const std::string at = path.empty() ? key : path + "." + key;
          if (!merged.empty())
            throw ConfigError(key_mark, at, "a second merge key (<<) in one map; merge several with <<: [*a, *b]");
          Node source = convert(kv.second, file, text, at, depth + 1, nodes);
          if (source.is_map()) merged.push_back(std::move(source));
          if (source.is_seq())
            for (Node& item : source.items())
              if (item.is_map()) merged.push_back(std::move(item));
          if (merged.empty() || (source.is_seq() && merged.size() != source.items().size()))
            throw ConfigError(key_mark, at,
                              "a merge key (<<) takes a map or a list of maps, such as *base or [*a, *b]");
          continue;
        }
        if (const Node* first = n.find(key)) {
          // Caffe's repeated fields, which a prototxt writes once per value: in YAML a list.
          static const std::set<std::string> kRepeated = {
              "top",       "bottom",     "stepvalue", "param",       "include",        "exclude",     "layer",
              "test_iter", "test_state", "dim",       "loss_weight", "propagate_down", "kernel_size", "pad",
              "stride",    "dilation",   "shape",     "mean_value",  "slice_point",    "coeff",       "weights",
              "stage",     "not_stage",  "input",     "input_shape", "input_dim",      "offset",      "blobs"};
          throw ConfigError(
              key_mark, path.empty() ? key : path + "." + key,
              "duplicate key '" + key + "' (first at line " + std::to_string(first->key_mark().line) +
                  "); give it once" +
                  (kRepeated.count(key) ? ", with a list for several values: " + key + ": [a, b]" : std::string()));
        }
        Node child = convert(kv.second, file, text, path.empty() ? key : path + "." + key, depth + 1, nodes);
        child.set_key_mark(key_mark);
        n.set(key, std::move(child));
      }
      for (Node& source : merged)
        for (auto& [key, value] : source.entries())
          if (!n.find(key)) {
            Node copy = value;
            copy.set_path(path.empty() ? key : path + "." + key);
            n.set(key, std::move(copy));
          }
      return n;
    }
  }
  return Node();
}

// The text's lines, without their line ends.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

size_t indent_of(const std::string& line) {
  const size_t i = line.find_first_not_of(" \t");
  return i == std::string::npos ? line.size() : i;
}

bool blank_or_comment(const std::string& line) {
  const size_t i = line.find_first_not_of(" \t");
  return i == std::string::npos || line[i] == '#';
}

// The line without its indentation, a trailing comment and trailing spaces (quotes are
// followed, so a '#' inside a quoted string stays).
std::string code_of(const std::string& line) {
  std::string out;
  char quote = 0;
  for (size_t i = indent_of(line); i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#' && (out.empty() || out.back() == ' ' || out.back() == '\t')) {
      break;
    }
    out += c;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
  return out;
}

// A line's code after any "- " list markers, and the column its key starts at.
std::string key_part(const std::string& line, size_t* key_column = nullptr) {
  std::string code = code_of(line);
  size_t column = indent_of(line);
  while (code.rfind("- ", 0) == 0) {
    const size_t skip = code.find_first_not_of(' ', 1);
    column += skip;
    code = code.substr(skip);
  }
  if (key_column) *key_column = column;
  return code;
}

// Whether each line is content of a block scalar (`key: |` or `key: >` and the lines
// indented under it), where any text, tabs and colons included, is allowed.
std::vector<bool> block_scalar_lines(const std::vector<std::string>& lines) {
  std::vector<bool> inside(lines.size(), false);
  size_t parent = std::string::npos;  // key column of the line that opened a block scalar
  for (size_t i = 0; i < lines.size(); ++i) {
    if (parent != std::string::npos) {
      if (lines[i].find_first_not_of(" \t") == std::string::npos || indent_of(lines[i]) > parent) {
        inside[i] = true;
        continue;
      }
      parent = std::string::npos;
    }
    size_t column = 0;
    const std::string code = key_part(lines[i], &column);
    const size_t bar = code.find_last_of("|>");
    if (bar != std::string::npos && (bar == 0 || code[bar - 1] == ' ') &&
        code.find_first_not_of("-+0123456789", bar + 1) == std::string::npos)
      parent = column;
  }
  return inside;
}

// "key value" without its ':' (a line with a space and no ':' that does not start a
// quoted or flow value): the line as it should read, or "".
std::string with_colon(const std::string& line) {
  const std::string code = key_part(line);
  const size_t space = code.find(' ');
  if (code.empty() || code.find(':') != std::string::npos || space == std::string::npos ||
      std::string("\"'{[&*!|>").find(code[0]) != std::string::npos)
    return "";
  return code.substr(0, space) + ":" + code.substr(space);
}

// yaml-cpp's messages name the parser's state ("illegal map value", "end of map not
// found"), often a line after the mistake. The usual mistakes behind them — a tab in
// the indentation, a key without its ':', a second ': ' in a value, a line indented
// deeper or shallower than its block — can be seen in the text, so the error is moved
// to that line and says what to change. `mark` (where yaml-cpp stopped) is updated.
std::string explain_syntax_error(const std::string& text, const std::string& yaml_message, Mark& mark) {
  const std::vector<std::string> lines = split_lines(text);
  const std::vector<bool> in_block = block_scalar_lines(lines);
  const size_t stop = std::min(static_cast<size_t>(std::max(mark.line, 1)), lines.size());  // 1-based
  auto at_line = [&](size_t line_1based) {
    mark.line = static_cast<int>(line_1based);
    mark.col = static_cast<int>(indent_of(lines[line_1based - 1]) + 1);
  };
  // YAML forbids tabs in indentation; yaml-cpp reports whatever it made of them.
  for (size_t i = 0; i < stop; ++i) {
    const std::string& l = lines[i];
    const size_t tab = l.find('\t');
    if (!in_block[i] && tab != std::string::npos && tab <= indent_of(l) && !blank_or_comment(l)) {
      mark.line = static_cast<int>(i + 1);
      mark.col = static_cast<int>(tab + 1);
      return "a tab indents this line; YAML indents with spaces only (replace the tab with spaces)";
    }
  }
  const std::string& here = lines[stop - 1];
  const bool here_code = !in_block[stop - 1] && !blank_or_comment(here);
  const bool block_message = yaml_message == YAML::ErrorMsg::END_OF_MAP || yaml_message == YAML::ErrorMsg::END_OF_SEQ;
  if (yaml_message != YAML::ErrorMsg::MAP_VALUE && !block_message) return yaml_message;
  auto no_colon = [&](size_t line_1based) {
    at_line(line_1based);
    const std::string code = key_part(lines[line_1based - 1]);
    return "'" + code + "' has no ':' after its key; write '" + with_colon(lines[line_1based - 1]) + "'";
  };
  // yaml-cpp stops at the key without ':' itself when a comment follows it.
  if (here_code && !with_colon(here).empty()) return no_colon(stop);
  // The previous line of code, before the line yaml-cpp stopped at.
  size_t prev = stop - 1;  // 1-based; 0: none
  while (prev > 0 && (blank_or_comment(lines[prev - 1]) || in_block[prev - 1])) --prev;
  size_t here_key = 0, prev_key = 0;
  const std::string here_part = key_part(here, &here_key);
  const std::string prev_part = prev > 0 ? key_part(lines[prev - 1], &prev_key) : "";
  // Otherwise a line later, at its next sibling.
  if (prev > 0 && here_code && prev_key == here_key && !with_colon(lines[prev - 1]).empty()) return no_colon(prev);
  if (yaml_message == YAML::ErrorMsg::MAP_VALUE && here_code) {
    const size_t first = here_part.find(": ");
    const size_t second = first == std::string::npos ? first : here_part.find(": ", first + 2);
    const size_t value = first == std::string::npos ? first : here_part.find_first_not_of(' ', first + 1);
    if (second != std::string::npos && value != std::string::npos &&
        std::string("\"'{[").find(here_part[value]) == std::string::npos) {
      at_line(stop);
      return "a second ': ' in '" + here_part + "'; a value containing ': ' must be quoted ('" +
             here_part.substr(0, first) + ": \"" + here_part.substr(value) + "\"')";
    }
    const size_t colon = prev_part.find(": ");
    if (prev > 0 && here_key > prev_key && colon != std::string::npos &&
        prev_part.find_first_not_of(' ', colon + 1) != std::string::npos)
      return "this line is indented deeper than line " + std::to_string(prev) +
             ", which already has its value; indent it as that line (or end that line with ':' to open a block)";
    return "a ':' YAML did not expect; check this line and the one above for a key without ':' or an indentation "
           "that differs from the lines beside it (" +
           yaml_message + ")";
  }
  if (block_message)
    return "this line's indentation fits no block above it; indent it as the lines it belongs with (the items of "
           "one list, the keys of one map, start in the same column) (" +
           yaml_message + ")";
  return yaml_message;
}

// Characters pasted in from web pages, word processors and chats that look like YAML's own
// (or like nothing) but are not: yaml-cpp takes them as part of a key or value, or stops a line
// later with a message about indentation, and a key or name holding one prints like the right
// one. Said at their line and column. NBSP and lookalike punctuation inside quotes are values
// and left alone; invisible ones never are.
void refuse_lookalikes(const std::string& text, const std::shared_ptr<const std::string>& file) {
  struct Lookalike {
    const char* bytes;  // UTF-8
    const char* what;
    bool in_quotes;  // refused inside quoted strings too
  };
  static const Lookalike kLookalikes[] = {
      {"\u00a0", "a non-breaking space (U+00A0); YAML needs plain spaces", false},
      {"\u3000", "an ideographic space (U+3000); YAML needs plain spaces", false},
      {"\u202f", "a narrow non-breaking space (U+202F); YAML needs plain spaces", false},
      {"\uff1a", "a full-width colon (U+FF1A); write ':'", false},
      {"\u201c", "a curly quote (U+201C); YAML quotes with straight \" or '", false},
      {"\u201d", "a curly quote (U+201D); YAML quotes with straight \" or '", false},
      {"\u200b", "an invisible zero-width space (U+200B); delete it", true},
      {"\u200c", "an invisible zero-width non-joiner (U+200C); delete it", true},
      {"\u200d", "an invisible zero-width joiner (U+200D); delete it", true},
      {"\u2060", "an invisible word joiner (U+2060); delete it", true},
      {"\ufeff", "an invisible byte-order mark (U+FEFF) inside the file; delete it", true},
  };
  int line = 1;
  size_t line_start = 0;
  char quote = 0;  // the quote a string on this line is open with
  bool comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line, line_start = i + 1, comment = false;
      if (quote == '\'') quote = 0;  // multi-line double-quoted strings stay open; rare either way
      continue;
    }
    if (comment) continue;  // text for people, whatever it holds
    const char before = i == line_start ? ' ' : text[i - 1];
    if (!quote && c == '#' && (before == ' ' || before == '\t')) {
      comment = true;
      continue;
    }
    // A quote opens a string only where a value starts (an apostrophe inside a plain value,
    // Caffe's net, is text).
    if (!quote && (c == '"' || c == '\'') && std::string_view(" \t[{,:-").find(before) != std::string_view::npos) {
      quote = c;
      continue;
    }
    if (quote && c == quote) {
      size_t backslashes = 0;  // "C:\\data\\" ends at its quote; "a\"b" does not
      while (quote == '"' && backslashes < i && text[i - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) {
        quote = 0;
        continue;
      }
    }
    if (static_cast<unsigned char>(c) < 0x80) continue;
    for (const Lookalike& l : kLookalikes) {
      const std::string_view bytes(l.bytes);
      if ((quote && !l.in_quotes) || text.compare(i, bytes.size(), bytes) != 0) continue;
      if (i == 0 && bytes == "\ufeff") continue;  // a BOM at the start is the editor's, and fine
      Mark m{file};
      m.line = line;
      m.col = static_cast<int>(i - line_start + 1);
      throw ConfigError(m, "", std::string("this line holds ") + l.what);
    }
  }
}

Node parse_with_name(const std::string& text, const std::string& name) {
  auto file = std::make_shared<const std::string>(name);
  refuse_lookalikes(text, file);
  try {
    const std::vector<YAML::Node> docs = YAML::LoadAll(text);
    // A second document (after a '---' line) would be ignored: a config pasted twice, or
    // two configs in one file.
    for (size_t i = 1; i < docs.size(); ++i)
      if (!docs[i].IsNull())
        throw ConfigError(make_mark(file, docs[i].Mark()), "",
                          "a second YAML document starts here (after a '---' or '...' line); a crema config is one "
                          "document: remove that line, or split the file in two");
    long nodes = 0;
    return convert(docs.empty() ? YAML::Node() : docs[0], file, text, "", 0, nodes);
  } catch (const YAML::Exception& e) {
    Mark m = make_mark(file, e.mark);
    // yaml-cpp says "bad file" at its depth limit; its messages may quote the offending byte raw.
    const std::string what =
        dynamic_cast<const YAML::DeepRecursion*>(&e) != nullptr
            ? "lists or maps nest deeper than the YAML reader allows (about 2000 levels); is this a crema config?"
            : printable(explain_syntax_error(text, e.msg, m));
    throw ConfigError(m, "", "YAML syntax error: " + what);
  }
}

// Width of `n` written in flow style, roughly (quotes are not counted).
size_t flow_width(const Node& n) {
  switch (n.kind()) {
    case Node::Kind::Null: return 1;
    case Node::Kind::Scalar: return n.str().size();
    case Node::Kind::Seq: {
      size_t w = 2;
      for (const auto& item : n.items()) w += flow_width(item) + 2;
      return w;
    }
    case Node::Kind::Map: {
      size_t w = 2;
      for (const auto& [k, v] : n.entries()) w += k.size() + 2 + flow_width(v) + 2;
      return w;
    }
  }
  return 0;
}

// Block style at the top, flow style for whatever fits on its line, so a converted
// net reads like a hand-written one: `param: [{lr_mult: 1}, {lr_mult: 2}]`.
void emit(YAML::Emitter& out, const Node& n, size_t column) {
  constexpr size_t kLineWidth = 100;
  const bool nested = column > 0;
  switch (n.kind()) {
    case Node::Kind::Null: out << YAML::Null; break;
    case Node::Kind::Scalar: out << n.str(); break;
    case Node::Kind::Seq:
      if (nested && column + flow_width(n) <= kLineWidth) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : n.items()) emit(out, item, column + 2);
      out << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      if (nested && column + flow_width(n) <= kLineWidth) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& [k, v] : n.entries()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v, column + k.size() + 4);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

Node parse_yaml(const std::string& text, const std::string& source_name) { return parse_with_name(text, source_name); }

Node parse_yaml_value(const std::string& text, const Mark& where, const std::string& key_path) {
  try {
    YAML::Load(text);  // the syntax first: a position inside a one-line value adds nothing
  } catch (const YAML::Exception& e) {
    throw ConfigError(where, key_path,
                      "the value '" + text + "' is not valid YAML (" + e.msg +
                          "); close its brackets, or quote it as a string: --set '" + key_path + "=\"...\"'");
  }
  // Later errors inside a list or map value point into the --set argument.
  return parse_with_name(text, where.file ? *where.file : "<command line>");
}

std::string to_yaml(const Node& node) {
  YAML::Emitter out;
  emit(out, node, 0);
  std::string text = out.c_str();
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

}  // namespace crema::io
