#include "serve/job.h"

namespace pocketlm::serve {

const char* FinishReasonName(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

void JobChannel::Push(JobEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

bool JobChannel::Wait(std::vector<JobEvent>* out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  while (!events_.empty()) {
    out->push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return true;
}

}  // namespace pocketlm::serve
