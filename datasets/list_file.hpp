// Caffe's image list files: one "path label" line per image, as convert_imageset
// and the ImageData layer read them.
#pragma once

#include <string>
#include <vector>

namespace crema {

struct ListEntry {
  std::string path;
  int label = 0;
  int line = 0;  // 1-based, in the list file
};

// Splits each line at its last blank, so that paths may hold spaces; blank lines are
// skipped. Throws Error naming the file and line for a line that is not "path
// integer" (Caffe would read it as label 0), when the file cannot be read, or when it
// names no images.
std::vector<ListEntry> read_list(const std::string& list);

}  // namespace crema
