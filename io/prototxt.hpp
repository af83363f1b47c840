// Caffe's text format (.prototxt, protobuf's text format) ↔ crema::Node.
//
// The parser needs no schema: `key: value` becomes a scalar that keeps its text as
// written (numbers keep their spelling, enums their name, strings their unescaped
// contents), `key { ... }` a map, and a key written more than once a list (once, it
// stays a scalar or a map; MapReader accepts both for repeated fields). Every value
// and key remembers its file:line:col, so errors found later point into the file.
//
// The writer needs a little schema: protobuf requires string fields quoted and enum
// values bare, and a Node scalar does not say which it was. Caffe's string fields are
// listed by name (prototxt_string_field); any other value is written bare when it
// reads as a number, a bool or an enum name (UPPER_CASE), and quoted otherwise.
#pragma once

#include <string>

#include "engine/config.hpp"

namespace crema::io {

// Throws ConfigError with file:line:col and what was expected on a syntax error.
Node parse_prototxt(const std::string& text, const std::string& source_name = "<string>");

// Writes a map as protobuf text: lists become repeated keys, maps `key { ... }`,
// null values are left out. Throws ConfigError for what the format cannot hold
// (a list inside a list).
std::string to_prototxt(const Node& message);

// Whether Caffe declares a field of this name as a string (name, type, bottom, top,
// source, net, lr_policy, ...), so its values must be quoted.
bool prototxt_string_field(const std::string& key);

}  // namespace crema::io
