// `pocketlm calibrate`: an importance matrix (llama.cpp's imatrix file) from a calibration text or dataset.
#pragma once

#include <string>

#include "option_table.h"
#include "options.h"

namespace pocketlm::cli {

struct CalibrateCliOptions {
  ModelOptions model;
  std::string text_path, data_path, out_path, chat_template;
  int chunks = 0;

  void Declare(Options& o);
};

int CalibrateCommand(const CalibrateCliOptions& o);

}  // namespace pocketlm::cli
