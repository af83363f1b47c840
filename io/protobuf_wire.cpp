#include "io/protobuf_wire.hpp"

#include <bit>
#include <cstring>

namespace crema::io::pb {

// Fixed-width values are little-endian on the wire; memcpy is exact only on a
// little-endian host (every platform crema builds for).
static_assert(std::endian::native == std::endian::little, "the protobuf reader assumes a little-endian host");

namespace {

const char* wire_type_name(WireType t) {
  switch (t) {
    case WireType::Varint: return "varint";
    case WireType::Fixed64: return "fixed64";
    case WireType::Bytes: return "length-delimited";
    case WireType::StartGroup: return "start-group";
    case WireType::EndGroup: return "end-group";
    case WireType::Fixed32: return "fixed32";
  }
  return "?";
}

template <class T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

WireError::WireError(const std::string& file, size_t offset, const std::string& message, const std::string& what)
    : Error(file + ": corrupt or truncated protobuf at byte " + std::to_string(offset) + " (reading " + message +
            "): " + what),
      offset_(offset),
      detail_(what) {}

Reader::Reader(const std::string& file, std::string_view bytes, std::string message)
    : Reader(file, reinterpret_cast<const uint8_t*>(bytes.data()), 0, bytes.size(), std::move(message)) {}

Reader::Reader(std::string file, const uint8_t* base, size_t begin, size_t end, std::string message)
    : file_(std::move(file)), base_(base), pos_(begin), end_(end), message_(std::move(message)), tag_offset_(begin) {}

void Reader::fail_at(size_t offset, const std::string& what) const { throw WireError(file_, offset, message_, what); }

void Reader::fail(const std::string& what) const { fail_at(tag_offset_, what); }

const uint8_t* Reader::take(uint64_t n, const char* what) {
  // Compared as 64-bit: a corrupt length may not fit size_t.
  const size_t left = end_ - pos_;
  if (n > left)
    fail(std::string(what) + " of " + std::to_string(n) + " byte(s) runs past the end of " + message_ + " (" +
         std::to_string(left) + " byte(s) left)");
  const uint8_t* p = base_ + pos_;
  pos_ += static_cast<size_t>(n);
  return p;
}

uint64_t Reader::raw_varint() {
  uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    if (pos_ >= end_) fail("a varint runs past the end of " + message_);
    const uint8_t byte = base_[pos_++];
    value |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) return value;
  }
  fail("a varint is longer than 10 bytes");
}

bool Reader::next() {
  if (pos_ >= end_) return false;
  tag_offset_ = pos_;
  const uint64_t tag = raw_varint();
  const uint64_t type = tag & 7;
  if (tag >> 3 == 0 || tag >> 3 > (1u << 29) - 1) fail("invalid field number " + std::to_string(tag >> 3));
  if (type > 5) fail("invalid wire type " + std::to_string(type) + " (field " + std::to_string(tag >> 3) + ")");
  field_ = static_cast<uint32_t>(tag >> 3);
  wire_type_ = static_cast<WireType>(type);
  if (wire_type_ == WireType::EndGroup) fail("an end-group tag without its start (field " + std::to_string(field_) + ")");
  return true;
}

void Reader::expect(WireType type, const char* what) const {
  if (wire_type_ != type)
    fail("field " + std::to_string(field_) + " (" + what + ") has wire type " + wire_type_name(wire_type_) +
         ", expected " + wire_type_name(type));
}

uint64_t Reader::read_varint() {
  expect(WireType::Varint, "an integer");
  return raw_varint();
}

// int32 is sent as a sign-extended 64-bit varint; protobuf keeps the low 32 bits.
int32_t Reader::read_int32() { return static_cast<int32_t>(static_cast<uint32_t>(read_varint())); }

int64_t Reader::read_int64() { return static_cast<int64_t>(read_varint()); }

template <class T>
T Reader::read_fixed(WireType type, const char* what) {
  expect(type, what);
  return load_le<T>(take(sizeof(T), what));
}

uint32_t Reader::read_fixed32() { return read_fixed<uint32_t>(WireType::Fixed32, "a fixed32 value"); }
uint64_t Reader::read_fixed64() { return read_fixed<uint64_t>(WireType::Fixed64, "a fixed64 value"); }
float Reader::read_float() { return read_fixed<float>(WireType::Fixed32, "a float value"); }
double Reader::read_double() { return read_fixed<double>(WireType::Fixed64, "a double value"); }

std::string_view Reader::raw_bytes() {
  const uint64_t length = raw_varint();
  const uint8_t* p = take(length, "a length-delimited value");
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(length)};
}

std::string_view Reader::read_bytes() {
  expect(WireType::Bytes, "a string, bytes or message");
  return raw_bytes();
}

Reader Reader::read_message(std::string message) {
  const std::string_view payload = read_bytes();
  const size_t begin = static_cast<size_t>(reinterpret_cast<const uint8_t*>(payload.data()) - base_);
  return Reader(file_, base_, begin, begin + payload.size(), std::move(message));
}

template <class T, class Decode>
void Reader::read_fixed_repeated(std::vector<T>& out, WireType unpacked, Decode decode) {
  if (wire_type_ != WireType::Bytes) {
    out.push_back(decode());
    return;
  }
  const std::string_view run = read_bytes();
  if (run.size() % sizeof(T) != 0)
    fail("a packed run of " + std::to_string(run.size()) + " byte(s) is not a whole number of " +
         std::to_string(sizeof(T)) + "-byte " + wire_type_name(unpacked) + " values");
  // The length was checked against the file, so this reservation is bounded by it.
  const auto* p = reinterpret_cast<const uint8_t*>(run.data());
  out.reserve(out.size() + run.size() / sizeof(T));
  for (size_t i = 0; i < run.size(); i += sizeof(T)) out.push_back(load_le<T>(p + i));
}

void Reader::read_floats(std::vector<float>& out) {
  read_fixed_repeated(out, WireType::Fixed32, [this] { return read_float(); });
}

void Reader::read_doubles(std::vector<double>& out) {
  read_fixed_repeated(out, WireType::Fixed64, [this] { return read_double(); });
}

void Reader::read_int64s(std::vector<int64_t>& out) {
  if (wire_type_ != WireType::Bytes) {
    out.push_back(read_int64());
    return;
  }
  Reader run = read_message(message_);
  while (run.pos_ < run.end_) out.push_back(static_cast<int64_t>(run.raw_varint()));
}

void Reader::skip() { skip_value(wire_type_, field_, 0); }

void Reader::skip_value(WireType type, uint32_t field, int depth) {
  switch (type) {
    case WireType::Varint: raw_varint(); return;
    case WireType::Fixed64: take(8, "a fixed64 value"); return;
    case WireType::Fixed32: take(4, "a fixed32 value"); return;
    case WireType::Bytes: raw_bytes(); return;
    case WireType::StartGroup:
      if (depth >= kMaxDepth) fail("groups nested more than " + std::to_string(kMaxDepth) + " deep");
      // A group ends at the end-group tag with its own field number; anything between
      // is skipped field by field.
      for (;;) {
        if (pos_ >= end_) fail("group (field " + std::to_string(field) + ") runs past the end of " + message_);
        const size_t at = pos_;
        const uint64_t tag = raw_varint();
        const uint64_t t = tag & 7;
        if (tag >> 3 == 0 || t > 5) fail_at(at, "an invalid tag inside a group (field " + std::to_string(field) + ")");
        const auto inner = static_cast<uint32_t>(tag >> 3);
        if (static_cast<WireType>(t) == WireType::EndGroup) {
          if (inner != field)
            fail_at(at, "group (field " + std::to_string(field) + ") closed by field " + std::to_string(inner));
          return;
        }
        skip_value(static_cast<WireType>(t), inner, depth + 1);
      }
    case WireType::EndGroup: break;
  }
  fail("an end-group tag without its start");
}

// ---- Writer ----------------------------------------------------------------------

void Writer::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    out_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out_.push_back(static_cast<char>(value));
}

void Writer::tag(uint32_t field, WireType type) {
  raw_varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(type));
}

void Writer::varint(uint32_t field, uint64_t value) {
  tag(field, WireType::Varint);
  raw_varint(value);
}

template <class T>
void Writer::fixed(uint32_t field, WireType type, T value) {
  tag(field, type);
  char le[sizeof value];
  std::memcpy(le, &value, sizeof value);  // little-endian host (asserted above)
  out_.append(le, sizeof le);
}

void Writer::fixed32_float(uint32_t field, float value) { fixed(field, WireType::Fixed32, value); }
void Writer::fixed64_double(uint32_t field, double value) { fixed(field, WireType::Fixed64, value); }

void Writer::bytes(uint32_t field, std::string_view value) {
  tag(field, WireType::Bytes);
  raw_varint(value.size());
  out_.append(value);
}

void Writer::packed_floats(uint32_t field, const float* values, size_t n) {
  // values: (n)
  if (n == 0) return;  // protobuf writes nothing for an empty packed field
  tag(field, WireType::Bytes);
  raw_varint(n * sizeof(float));
  out_.append(reinterpret_cast<const char*>(values), n * sizeof(float));
}

void Writer::packed_varints(uint32_t field, const std::vector<int64_t>& values) {
  if (values.empty()) return;
  Writer run;
  for (int64_t v : values) run.raw_varint(static_cast<uint64_t>(v));
  bytes(field, run.out_);
}

}  // namespace crema::io::pb
