#include "datasets/list_file.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "engine/error.hpp"

namespace crema {

std::vector<ListEntry> read_list(const std::string& list) {
  std::ifstream in(list);
  if (!in) throw Error("cannot open the list file '" + list + "': " + std::strerror(errno ? errno : ENOENT));
  std::vector<ListEntry> entries;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (number == 1 && line.rfind("\xef\xbb\xbf", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const size_t split = line.find_last_of(" \t");
    ListEntry e;
    e.line = number;
    bool ok = split != std::string::npos && split > 0;
    if (ok) {
      const std::string label = line.substr(split + 1);
      size_t used = 0;
      try {
        e.label = std::stoi(label, &used);
      } catch (const std::out_of_range&) {
        throw Error(list + ":" + std::to_string(number) + ": label " + label +
                    " is out of range (labels are class numbers: 0 to 2147483647)");
      } catch (const std::exception&) {
        used = 0;
      }
      e.path = line.substr(0, line.find_last_not_of(" \t", split) + 1);
      ok = used == label.size() && !e.path.empty();
    }
    if (!ok)
      throw Error(list + ":" + std::to_string(number) + ": expected 'path label' (the label an integer), got '" + line +
                  "'");
    entries.push_back(std::move(e));
  }
  if (entries.empty()) throw Error("the list file '" + list + "' names no images");
  return entries;
}

}  // namespace crema
