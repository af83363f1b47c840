// Tools for looking at a net's data layers on their own:
//   crema time --data --model NET          samples per second of each data layer
//   crema preview --model NET --out DIR    transformed samples written as PNG files
// and the class list an image folder defines, kept next to the checkpoints so that
// `crema classify` can print class names.
#pragma once

#include <string>
#include <vector>

namespace crema {
class Net;
}

namespace crema::app {

struct DataTimeOptions {
  std::string model;
  int iterations = 50;
  std::string phase = "TRAIN";
  std::vector<std::string> overrides;  // --set key.path=value
};
int time_data(const DataTimeOptions& opt);

struct PreviewOptions {
  std::string model;
  std::string out;
  int count = 16;
  std::string phase = "TRAIN";
  std::vector<std::string> overrides;  // --set key.path=value
};
int preview(const PreviewOptions& opt);

// "<prefix>.classes.txt": where training writes the class names of its data.
std::string classes_path(const std::string& snapshot_prefix);
// Writes the class names the net's data layers know, if any, to classes_path(prefix).
void write_class_names(const Net& net, const std::string& snapshot_prefix);
// The class names of a classes file (or of --labels, `option` in its messages), one per line.
std::vector<std::string> read_class_names(const std::string& path, const std::string& option);
// Refuses a net whose image folder's classes are not `trained` (from `trained_origin`, e.g.
// "of layer 'data' of the TRAIN net"): labels are class positions, so a test folder lacking a
// class would shift the labels of those after it, and every score be wrong without a word.
void refuse_other_classes(const Net& net, const std::vector<std::string>& trained, const std::string& trained_origin);
// The classes file that belongs with a snapshot's weights or state
// ("run/x_iter_100.caffemodel.h5" -> "run/x.classes.txt"), or "" when there is none.
std::string classes_beside_snapshot(const std::string& file);

}  // namespace crema::app
