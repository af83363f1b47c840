// `crema classify`: Caffe's cpp_classification example as a subcommand.
#pragma once

#include <string>
#include <vector>

namespace crema::app {

struct ClassifyOptions {
  std::string model;
  std::vector<std::string> weights;
  std::vector<float> mean_value;
  std::string mean_file;
  float scale = 1.f;
  std::string labels;
  int top_k = 5;
  std::vector<std::string> images;
  int gpu = -1;
};
int classify(const ClassifyOptions& opt);

}  // namespace crema::app
