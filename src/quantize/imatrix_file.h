// Importance matrices: per weight matrix, the mean squared activation of each input column over a calibration
// text (llama.cpp's llama-imatrix). Quantizers weight each column's rounding error by it (quant.h,
// QuantizeRowWeighted), so the columns the model leans on keep their precision.
//
// Two file formats, both llama.cpp's:
//  - the binary format of llama-imatrix up to 2025 (what ../shared/golden/imatrix/llama-kq.imatrix is), all
//    little-endian: int32 entry count; per entry int32 name length, the name, int32 ncall, int32 n_values, then
//    n_values float32 = (sum over tokens of x^2) / count * ncall; then int32 chunk count, int32 length and bytes of
//    the calibration file's name. llama-quantize divides the stored values by ncall again.
//  - the GGUF format of later llama.cpp (general.type = "imatrix"): per entry a tensor "<name>.in_sum2" (f32,
//    [n_values, n_mat]) with the sums of squares and "<name>.counts" (f32, [1, n_mat]) with the token counts;
//    keys imatrix.chunk_count, imatrix.chunk_size, imatrix.datasets. Quantizers use in_sum2 / counts.
// Either way a value is a column's mean squared activation. ReadImatrix() takes either format (by the file's
// magic); WriteImatrix() writes the binary one, which every llama-quantize reads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace pocketlm::quantize {

struct ImatrixEntry {
  int ncall = 0;  // calls (chunks) the statistics cover
  // (n_mat, n_values): the mean squared activation per column, what a quantizer weights with, computed as
  // llama-quantize does: the binary format's stored value / ncall, the GGUF format's in_sum2 / counts (1 for a
  // matrix that saw no tokens).
  std::vector<float> values;
  int64_t n_values = 0;  // per matrix: the weight's row length
  int64_t n_mat = 1;     // matrices (experts) stacked in the tensor
};

struct ImportanceMatrix {
  std::map<std::string, ImatrixEntry> entries;  // by weight name, e.g. "blk.0.attn_q.weight"
  int chunk_count = 0;
  int chunk_size = 0;   // tokens per chunk (GGUF files; 0 when unknown)
  std::string dataset;  // the calibration file's name

  // The weights for the rows of `name` (n_values of them for matrix `mat`), or nullptr when it has no entry.
  const float* Find(const std::string& name, int64_t mat = 0) const;
};

// Errors name the file and the field that is wrong (truncated entry, negative length, non-finite value, ...).
Result<ImportanceMatrix> ReadImatrix(const std::string& path);
// From bytes (tests, fuzzing); `name` appears in errors.
Result<ImportanceMatrix> ParseImatrix(const std::vector<uint8_t>& bytes, const std::string& name);
// Written to a temp file and renamed: an error never leaves a partial file.
Status WriteImatrix(const std::string& path, const ImportanceMatrix& m);

}  // namespace pocketlm::quantize
