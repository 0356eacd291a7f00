// Op-level profiling through libtorch's autograd profiler (the legacy one: Debian's libtorch 1.13
// is built without Kineto, and the legacy profiler records every dispatcher call on the calling
// thread, which is where kdistill runs forward and CPU backward). profilerStart() turns it on for
// this thread; profilerStop() turns it off and returns the operators aggregated by name, as
// PyTorch's key_averages() does: calls, self and total CPU microseconds.
#include "common.h"
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unordered_map>

namespace kd {

namespace prof = torch::autograd::profiler;

static bool gProfiling = false;

static Napi::Value ProfilerStart(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (gProfiling) throw std::runtime_error("the profiler is already running (profilerStop() first)");
    prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
    gProfiling = true;
    return info.Env().Undefined();
  });
}

struct OpStats { int64_t calls = 0; double selfUs = 0, totalUs = 0; };

static Napi::Value ProfilerStop(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!gProfiling) throw std::runtime_error("the profiler is not running (profilerStart() first)");
    gProfiling = false;
    prof::thread_event_lists lists = prof::disableProfilerLegacy();
    std::unordered_map<std::string, OpStats> byName;
    std::vector<std::string> order;  // first-seen order, for a stable result
    double wallUs = 0;
    for (const auto& events : lists) {
      // Ranges nest on one thread: a pop closes the innermost open push with its handle. A
      // range's self time is its total minus the totals of the ranges directly inside it.
      struct Open { const prof::LegacyEvent* push; double childUs; };
      std::vector<Open> stack;
      double first = -1, last = -1;
      for (const auto& e : events) {
        if (e.kind() == prof::EventKind::PushRange) {
          stack.push_back({&e, 0});
          if (first < 0) first = e.cpuUs();
        } else if (e.kind() == prof::EventKind::PopRange) {
          size_t i = stack.size();
          while (i > 0 && stack[i - 1].push->handle() != e.handle()) i--;
          if (i == 0) continue;  // a pop without its push (opened before start): skip it
          const Open open = stack[i - 1];
          stack.resize(i - 1);
          const double total = open.push->cpuElapsedUs(e);
          last = e.cpuUs();
          if (!stack.empty()) stack.back().childUs += total;
          auto [it, fresh] = byName.try_emplace(open.push->name());
          if (fresh) order.push_back(it->first);
          it->second.calls++;
          it->second.totalUs += total;
          it->second.selfUs += total - open.childUs;
        }
      }
      if (first >= 0 && last > first) wallUs = std::max(wallUs, last - first);
    }
    Napi::Env env = info.Env();
    Napi::Array ops = Napi::Array::New(env, order.size());
    for (size_t i = 0; i < order.size(); i++) {
      const OpStats& s = byName[order[i]];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", order[i]);
      o.Set("calls", Napi::Number::New(env, static_cast<double>(s.calls)));
      o.Set("selfUs", s.selfUs);
      o.Set("totalUs", s.totalUs);
      ops[i] = o;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("ops", ops);
    out.Set("spanUs", wallUs);
    return out;
  });
}

void initProfiler(Napi::Env env, Napi::Object exports) {
  exports.Set("profilerStart", Napi::Function::New(env, ProfilerStart));
  exports.Set("profilerStop", Napi::Function::New(env, ProfilerStop));
}

}  // namespace kd
