#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace pocketlm {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  PLM_ASSIGN_OR_RETURN(int h, Half(x));
  PLM_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckPositive(int x) {
  if (x <= 0) return OutOfRange("not positive");
  return Status::Ok();
}

Status Both(int a, int b) {
  PLM_RETURN_IF_ERROR(CheckPositive(a));
  PLM_RETURN_IF_ERROR(CheckPositive(b).WithContext("second"));
  return Status::Ok();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Corrupt("bad");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kCorrupt);
  EXPECT_EQ(s.WithContext("loading x").message(), "loading x: bad");
  EXPECT_EQ(Status::Ok().WithContext("ctx").message(), "");
}

TEST(StatusTest, MacrosPropagate) {
  auto q = Quarter(12);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 3);
  auto odd = Quarter(6);  // 6 -> 3 -> error
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().message(), "3 is odd");
  EXPECT_TRUE(Both(1, 2).ok());
  EXPECT_EQ(Both(0, 2).message(), "not positive");
  EXPECT_EQ(Both(1, -1).message(), "second: not positive");
  EXPECT_TRUE(Result<int>(5).status().ok());
}

TEST(StatusTest, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace pocketlm
