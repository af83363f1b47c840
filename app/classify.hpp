// `crema classify`: Caffe's cpp_classification example as a subcommand.
#pragma once

#include <optional>
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
  bool top_k_given = false;  // a --top-k above the classes is said; the default is not
  int batch_size = 32;  // images per forward pass: memory stays bounded however many are given
  std::vector<std::string> images;
  int gpu = -1;
  std::vector<std::string> stages;  // added to the TEST net's state: a DIGITS-style net's "deploy"
  std::optional<int> level;
};
int classify(const ClassifyOptions& opt);

}  // namespace crema::app
