// Helpers shared by the kernel tests: the fixture of the tests that run once per Highway target compiled into the
// binary and supported by this CPU, and weight views over test buffers.
#pragma once

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstdint>
#include <string>

#include "tensor/tensor_view.h"

namespace pocketlm::testutil {

// The parameter is the target; the target mock is reset afterwards.
class HwyTargetTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

inline std::string TargetNameOf(const ::testing::TestParamInfo<int64_t>& p) {
  return hwy::TargetName(p.param);
}

// A weight matrix of n_out rows of n_in values, stored in `type` in the nbytes at `data`.
inline TensorView MatrixView(DType type, int64_t n_in, int64_t n_out, const void* data, size_t nbytes) {
  TensorView w;
  w.type = type;
  w.ne[0] = n_in;
  w.ne[1] = n_out;
  w.data = static_cast<const uint8_t*>(data);
  w.nbytes = nbytes;
  return w;
}

}  // namespace pocketlm::testutil
