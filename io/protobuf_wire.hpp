// A small, bounds-checked reader for the protobuf wire format, enough to read the
// binary files Caffe writes (.caffemodel, .solverstate, .binaryproto, LMDB Datums)
// without depending on libprotobuf or caffe.proto, and a writer for the few
// messages crema writes (Caffe's Datum and mean-image BlobProto, TensorBoard's Event).
// Caffe users bring files that were cut short by a full disk or an interrupted
// download, so nothing read from the file is trusted: every length is checked
// against the bytes left in its message, varints are at most 10 bytes, groups nest
// at most kMaxDepth deep, and every failure is a WireError naming the file, the byte
// offset and the message.
//
// Wire format: a message is a sequence of (tag, value); tag = field << 3 | type,
// with type 0 varint, 1 fixed64, 2 length-delimited, 3/4 group start/end (obsolete,
// skipped), 5 fixed32. Repeated numeric fields come packed (one length-delimited
// run) or unpacked (one tag per value); readers accept both, as protobuf does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/error.hpp"

namespace crema::io::pb {

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5 };

// "<file>: corrupt or truncated protobuf at byte <offset> (reading <message>): <what>".
class WireError : public Error {
 public:
  WireError(const std::string& file, size_t offset, const std::string& message, const std::string& what);
  size_t offset() const { return offset_; }
  const std::string& detail() const { return detail_; }  // <what> alone

 private:
  size_t offset_;
  std::string detail_;
};

// Reads the fields of one message. A Reader views bytes it does not own (the whole
// file, kept alive by the caller); offsets it reports are from the file's start.
class Reader {
 public:
  static constexpr int kMaxDepth = 64;  // nested groups skipped before giving up

  // The top-level message: all of `bytes`, which came from `file`.
  Reader(const std::string& file, std::string_view bytes, std::string message);

  // Moves to the next field; false at the end of the message.
  bool next();
  uint32_t field() const { return field_; }
  WireType wire_type() const { return wire_type_; }
  size_t field_offset() const { return tag_offset_; }  // where the current field's tag starts

  // Scalars; each checks the current field's wire type.
  uint64_t read_varint();
  int32_t read_int32();  // varint, truncated to 32 bits as protobuf does
  int64_t read_int64();
  uint32_t read_fixed32();
  uint64_t read_fixed64();
  float read_float();
  double read_double();
  std::string_view read_bytes();  // a length-delimited payload
  std::string read_string() { return std::string(read_bytes()); }
  // A reader on an embedded message (wire type 2), named `message` in errors.
  Reader read_message(std::string message);

  // Repeated numeric fields, packed or not: append this field's value(s) to `out`.
  void read_floats(std::vector<float>& out);
  void read_doubles(std::vector<double>& out);
  void read_int64s(std::vector<int64_t>& out);

  // Skips the current field's value, whatever its wire type (groups included).
  void skip();

  // Throws a WireError at the current field, or at `offset` (from the file's start).
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void fail_at(size_t offset, const std::string& what) const;
  const std::string& message() const { return message_; }
  void set_message(std::string message) { message_ = std::move(message); }

 private:
  Reader(std::string file, const uint8_t* base, size_t begin, size_t end, std::string message);
  void expect(WireType type, const char* what) const;
  uint64_t raw_varint();
  template <class T>
  T read_fixed(WireType type, const char* what);
  const uint8_t* take(uint64_t n, const char* what);  // n bytes from pos_, checked
  std::string_view raw_bytes();                        // a length and its payload
  void skip_value(WireType type, uint32_t field, int depth);
  template <class T, class Decode>
  void read_fixed_repeated(std::vector<T>& out, WireType unpacked, Decode decode);

  std::string file_;
  const uint8_t* base_;  // the file's first byte
  size_t pos_;           // offsets from base_
  size_t end_;
  std::string message_;
  uint32_t field_ = 0;
  WireType wire_type_ = WireType::Varint;
  size_t tag_offset_ = 0;
};

// Builds one message. Fields are appended in call order; to match the bytes that
// protobuf (and so Caffe) writes, call them in field-number order, as protobuf
// serialises. Fixed-width values are little-endian.
class Writer {
 public:
  void varint(uint32_t field, uint64_t value);  // uint32/uint64/bool/enum
  // int32 (and int64): a negative value is sign-extended to 10 bytes, as protobuf does.
  void int32(uint32_t field, int32_t value) { varint(field, static_cast<uint64_t>(static_cast<int64_t>(value))); }
  void fixed32_float(uint32_t field, float value);  // one unpacked `float`
  void fixed64_double(uint32_t field, double value);  // one `double`
  void bytes(uint32_t field, std::string_view value);  // string, bytes or an embedded message
  // Repeated [packed = true] fields; nothing at all when empty, as protobuf.
  void packed_floats(uint32_t field, const float* values, size_t n);
  void packed_varints(uint32_t field, const std::vector<int64_t>& values);  // e.g. BlobShape.dim

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void tag(uint32_t field, WireType type);
  void raw_varint(uint64_t value);
  template <class T>
  void fixed(uint32_t field, WireType type, T value);
  std::string out_;
};

}  // namespace crema::io::pb
