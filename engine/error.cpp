#include "engine/error.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <vector>

namespace crema {

std::string Mark::str() const {
  std::string s = file ? *file : std::string("<command line>");
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(col);
  return s;
}

ConfigError::ConfigError(const Mark& mark, const std::string& path, const std::string& message)
    : Error(mark.str() + ": " + (path.empty() ? std::string() : path + ": ") + message),
      mark_(mark),
      path_(path) {}

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> pieces;
  for (size_t start = 0;;) {
    const size_t comma = list.find(',', start);
    pieces.push_back(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return pieces;
    start = comma + 1;
  }
}

std::string first_few(const std::vector<std::string>& items, size_t shown) {
  if (items.empty()) return "none";
  std::string text;
  for (size_t i = 0; i < items.size() && i < shown; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > shown) text += " and " + std::to_string(items.size() - shown) + " more";
  return text;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./,:@%") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string lowercase(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

std::string printable(const std::string& text) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

const std::string& caffe_name_for(const std::string& word) {
  static const std::map<std::string, std::string> names = {// solver keys
                                                           {"lr", "base_lr"},
                                                           {"learning_rate", "base_lr"},
                                                           {"epochs", "max_iter"},
                                                           {"num_epochs", "max_iter"},
                                                           {"max_epochs", "max_iter"},

                                                           {"max_iters", "max_iter"},
                                                           {"steps", "max_iter"},
                                                           {"max_steps", "max_iter"},
                                                           {"optimizer", "type"},
                                                           {"optim", "type"},
                                                           {"betas", "momentum"},
                                                           {"beta1", "momentum"},
                                                           {"beta2", "momentum2"},
                                                           {"eps", "delta"},
                                                           {"epsilon", "delta"},
                                                           {"lr_scheduler", "lr_policy"},
                                                           {"lr_schedule", "lr_policy"},
                                                           {"scheduler", "lr_policy"},
                                                           {"schedule", "lr_policy"},
                                                           {"warmup_steps", "warmup_iter"},
                                                           {"warmup_iters", "warmup_iter"},
                                                           {"grad_clip", "clip_gradients"},
                                                           {"clip_grad_norm", "clip_gradients"},
                                                           {"max_grad_norm", "clip_gradients"},
                                                           {"seed", "random_seed"},
                                                           {"manual_seed", "random_seed"},
                                                           {"accumulate_grad_batches", "iter_size"},
                                                           {"gradient_accumulation_steps", "iter_size"},
                                                           {"eval_interval", "test_interval"},
                                                           {"val_interval", "test_interval"},
                                                           {"log_interval", "display"},
                                                           {"save_interval", "snapshot"},
                                                           {"milestones", "stepvalue"},
                                                           {"weight_decay_type", "regularization_type"},
                                                           // lr_policy values
                                                           {"constant", "fixed"},
                                                           {"cos", "cosine"},
                                                           {"cosineannealing", "cosine"},
                                                           {"cosine_annealing", "cosine"},
                                                           {"cosineannealinglr", "cosine"},
                                                           {"steplr", "step"},
                                                           {"multisteplr", "multistep"},
                                                           {"exponential", "exp"},
                                                           {"exponentiallr", "exp"},
                                                           {"polynomial", "poly"},
                                                           // layer types
                                                           {"linear", "InnerProduct"},
                                                           {"dense", "InnerProduct"},
                                                           {"fullyconnected", "InnerProduct"},
                                                           {"conv2d", "Convolution"},
                                                           {"conv", "Convolution"},
                                                           {"convtranspose2d", "Deconvolution"},
                                                           {"maxpool2d", "Pooling"},
                                                           {"avgpool2d", "Pooling"},
                                                           {"maxpool", "Pooling"},
                                                           {"avgpool", "Pooling"},
                                                           {"batchnorm2d", "BatchNorm"},
                                                           {"batchnorm1d", "BatchNorm"},
                                                           {"crossentropyloss", "SoftmaxWithLoss"},
                                                           {"crossentropy", "SoftmaxWithLoss"},
                                                           {"nllloss", "MultinomialLogisticLoss"},
                                                           {"mseloss", "EuclideanLoss"},
                                                           {"bcewithlogitsloss", "SigmoidCrossEntropyLoss"},
                                                           {"leakyrelu", "ReLU"},
                                                           {"embedding", "Embed"},
                                                           {"cat", "Concat"},
                                                           {"dropout2d", "Dropout"},
                                                           {"batchnormalization", "BatchNorm"},
                                                           {"add", "Eltwise"},
                                                           {"concatenate", "Concat"},
                                                           {"adaptiveavgpool2d", "Pooling"},
                                                           {"adaptivemaxpool2d", "Pooling"},
                                                           {"globalaveragepooling2d", "Pooling"},
                                                           {"globalavgpool", "Pooling"},
                                                           {"softplus", "BNLL"},
                                                           {"upsample", "Deconvolution"},
                                                           {"convtranspose", "Deconvolution"},
                                                           {"silu", "Swish"},
                                                           {"hardtanh", "Clip"},
                                                           {"relu6", "Clip"},
                                                           // layer keys
                                                           {"out_features", "num_output"},
                                                           {"out_channels", "num_output"},
                                                           {"num_classes", "num_output"},
                                                           {"hidden_size", "num_output"},
                                                           {"embedding_dim", "num_output"},
                                                           {"num_embeddings", "input_dim"},
                                                           {"vocab_size", "input_dim"},
                                                           {"kernel", "kernel_size"},
                                                           {"padding", "pad"},
                                                           {"groups", "group"},
                                                           {"dim", "axis"},
                                                           {"ceil_mode", "round_mode"},
                                                           {"inputs", "bottom"},
                                                           {"input", "bottom"},
                                                           {"outputs", "top"},
                                                           {"output", "top"},
                                                           // filler types
                                                           {"kaiming", "msra"},
                                                           {"kaiming_normal", "msra"},
                                                           {"kaiming_uniform", "msra"},
                                                           {"he", "msra"},
                                                           {"he_normal", "msra"},
                                                           {"glorot", "xavier"},
                                                           {"glorot_uniform", "xavier"},
                                                           {"xavier_uniform", "xavier"},
                                                           {"xavier_normal", "xavier"},
                                                           {"normal", "gaussian"},
                                                           {"zeros", "constant"}};
  static const std::string none;
  const auto it = names.find(lowercase(word));
  return it == names.end() ? none : it->second;
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  const auto has = [&](const std::string& c) {
    return std::find(candidates.begin(), candidates.end(), c) != candidates.end();
  };
  // Other frameworks' layers that crema lacks, a letter away from one it has that does
  // something else (GELU is not ELU): no name is better than that one.
  static const std::set<std::string> unlike = {"gelu", "gru", "selu", "celu", "glu", "mish"};
  if (unlike.count(lowercase(word)) && has("ELU")) return "";
  // Beside a `shape` (Reshape's), a dim is Caffe's own, one level too high: not PyTorch's axis.
  if (const std::string& caffe = caffe_name_for(word); !caffe.empty() && has(caffe) && !(word == "dim" && has("shape")))
    return caffe;
  std::string best;
  int best_d = 1 << 30;
  for (const auto& c : candidates) {
    const int d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  // Accept roughly one typo per three characters, at least two.
  const int limit = std::max(2, static_cast<int>(word.size()) / 3);
  return best_d <= limit ? best : std::string();
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string m = closest_match(word, candidates);
  if (m.empty()) return {};
  const bool renamed = caffe_name_for(word) == m;  // not a typo: another framework's name
  // Epochs are not iterations: carrying the number over would train a few batches.
  const bool epochs = renamed && m == "max_iter" && lowercase(word).find("epoch") != std::string::npos;
  // The same switch with the opposite default: a PyTorch net's pooled sizes change without it.
  const bool rounding = renamed && m == "round_mode";
  const std::string w = lowercase(word);
  const bool global = renamed && m == "Pooling" && (w.starts_with("adaptive") || w.starts_with("global"));
  const bool upsample = renamed && w == "upsample";
  const bool betas = renamed && w == "betas";
  return " (did you mean '" + m + "'?" + (renamed ? " crema uses Caffe's names" : "") +
         (epochs ? "; max_iter counts iterations: epochs × training samples ÷ batch_size" : "") +
         (rounding ? "; round_mode: FLOOR is PyTorch's default (ceil_mode false), CEIL is Caffe's and crema's" : "") +
         (global ? "; pooling_param: {global_pooling: true} pools each channel to 1x1" : "") +
         (upsample ? "; with a bilinear weight_filler, group and num_output the channels, and lr_mult 0" : "") +
         (betas ? "; momentum takes the first beta and momentum2 the second" : "") + ")";
}

}  // namespace crema
