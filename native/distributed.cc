// Data-parallel collectives on libtorch's own c10d engine: a TCPStore for rendezvous and a
// ProcessGroupGloo for allreduce/broadcast/allgather/barrier on CPU tensors. Every call blocks
// until its collective finishes; a dead peer or a timeout comes back as a JS Error (Gloo reports
// it on the Work object), never as an abort, so the trainer can end the run cleanly.
// The one exception is the gradient reducer (DDP's Reducer, below): it starts each bucket's
// all-reduce from an autograd hook during backward and waits for them all in finalize.
#include "common.h"
// ProcessGroupGloo.hpp includes Gloo's own headers (Debian: libgloo-dev). Without them the addon
// still builds, and the distributed functions say what to install.
#if !defined(KDISTILL_NO_GLOO) && __has_include(<gloo/algorithm.h>)
#define KD_HAVE_GLOO 1
// libtorch was built with Gloo; its header hides the class unless told so.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <malloc.h>
#include <algorithm>
#include <mutex>
#include <unordered_set>
#endif
#ifdef __linux__
#include <sys/prctl.h>
#include <csignal>
#endif

namespace kd {

#ifdef KD_HAVE_GLOO
static const napi_type_tag kStoreTag = {0x6b646973744c5431ULL, 0x73746f7265000005ULL};
static const napi_type_tag kGroupTag = {0x6b646973744c5431ULL, 0x70670000000006ULL};

struct StoreBox {
  c10::intrusive_ptr<c10d::Store> store;
};
struct GroupBox {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

static GroupBox* group(const Napi::Value& v) {
  auto* g = unwrapObject<GroupBox>(v, &kGroupTag, "process group");
  if (!g->pg) throw Napi::Error::New(v.Env(), "the process group was destroyed");
  return g;
}

// Waits for one collective; Gloo's errors ("Connection closed by peer", "Timed out waiting ...")
// are rethrown with the collective's name so the message says what was in flight.
static void waitWork(const c10::intrusive_ptr<c10d::Work>& w, const char* what) {
  try {
    w->wait();
  } catch (const c10::Error& e) {
    throw std::runtime_error(std::string(what) + " failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(what) + " failed: " + e.what());
  }
}

static std::vector<at::Tensor> tensorList(const Napi::Value& v, const char* what) {
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    at::Tensor& t = unwrapTensor(arr.Get(i), what);
    // Gloo reads and writes the storage directly: a view with gaps would be silently wrong.
    if (!t.is_contiguous()) throw std::invalid_argument(std::string(what) + " must be contiguous");
    out.push_back(t);
  }
  return out;
}

// Gloo mallocs a scratch buffer for every collective (about half the tensor for an all-reduce of
// two ranks) and frees it when done. The tensor allocator pins glibc's mmap threshold at 128 KiB
// (allocator.cc), so each of these buffers was a fresh mapping: page faults on first touch, and an
// munmap with a TLB shootdown after every collective. With the MLP's 1 MiB gradient bucket that
// made a plain 2-rank all-reduce 5-10x slower than PyTorch's over the same Gloo (which keeps
// glibc's adaptive threshold). Process-group members therefore serve blocks up to the largest
// collective from the heap and keep that much free heap instead of trimming it: the scratch buffer
// is reused, fault-free, from the second collective on. Monotonic: only ever raised.
static void heapForCollectives(size_t bytes) {
  static std::mutex mu;
  static size_t current = 0;
  // glibc's own ceiling for its adaptive threshold (32 MiB on 64-bit), at least.
  size_t want = std::max<size_t>(bytes + (1u << 20), size_t(32) << 20);
  std::lock_guard<std::mutex> lock(mu);
  if (want <= current) return;
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(std::min<size_t>(want, INT32_MAX)));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min<size_t>(2 * want, INT32_MAX)));
  current = want;
}

static size_t bytesOf(const std::vector<at::Tensor>& ts) {
  size_t n = 0;
  for (const auto& t : ts) n += t.numel() * t.element_size();
  return n;
}

// distStoreCreate(host, port, worldSize, isMaster, timeoutMs) -> store. The master listens on
// port (0: any free port, see distStorePort) and waits for the others up to timeoutMs.
static Napi::Value StoreCreate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(info[1].As<Napi::Number>().Uint32Value());
    o.numWorkers = static_cast<std::size_t>(info[2].As<Napi::Number>().Uint32Value());
    o.isServer = info[3].As<Napi::Boolean>().Value();
    o.waitWorkers = false;  // the process group's own rendezvous waits for every rank
    o.timeout = std::chrono::milliseconds(info[4].As<Napi::Number>().Int64Value());
    auto box = new StoreBox();
    try {
      box->store = c10::make_intrusive<c10d::TCPStore>(info[0].As<Napi::String>().Utf8Value(), o);
    } catch (...) {
      delete box;
      throw;
    }
    return wrapObject(info.Env(), box, &kStoreTag);
  });
}

static Napi::Value StorePort(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* s = unwrapObject<StoreBox>(info[0], &kStoreTag, "store");
    auto* tcp = dynamic_cast<c10d::TCPStore*>(s->store.get());
    return Napi::Number::New(info.Env(), tcp ? tcp->getPort() : 0);
  });
}

// distGroupCreate(store, rank, size, {hostname?, iface?}, timeoutMs) -> process group. The Gloo
// device binds to the interface or address peers reach this process on (loopback for one machine).
static Napi::Value GroupCreate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* s = unwrapObject<StoreBox>(info[0], &kStoreTag, "store");
    int rank = info[1].As<Napi::Number>().Int32Value();
    int size = info[2].As<Napi::Number>().Int32Value();
    auto where = info[3].As<Napi::Object>();
    auto timeout = std::chrono::milliseconds(info[4].As<Napi::Number>().Int64Value());
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (where.Get("iface").IsString()) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(where.Get("iface").As<Napi::String>().Utf8Value()));
    } else if (where.Get("hostname").IsString()) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(where.Get("hostname").As<Napi::String>().Utf8Value()));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    // Two worker threads, as PyTorch's default: the overlapped exchange's buckets (the MLP
    // benchmark's 1 MiB first bucket, then its 800 KiB first-layer weight) then run their
    // handshakes concurrently instead of queueing behind each other. Measured with one worker
    // thread: 14-17k samples/s overlapped against 20-21k with two (bench/distributed.ts' MLP, 2
    // processes on 2 cores); the single-bucket exchange after backward does not change.
    opts->threads = 2;
    heapForCollectives(0);
    auto box = new GroupBox();
    box->timeout = timeout;
    try {
      box->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, rank, size, opts);
    } catch (...) {
      delete box;
      throw;
    }
    return wrapObject(info.Env(), box, &kGroupTag);
  });
}

// Releases the group's sockets and threads now rather than at garbage collection.
static Napi::Value GroupDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    unwrapObject<GroupBox>(info[0], &kGroupTag, "process group")->pg.reset();
    return info.Env().Undefined();
  });
}

static c10d::ReduceOp reduceOp(const std::string& op) {
  if (op == "sum" || op == "avg") return c10d::ReduceOp::SUM;  // Gloo has no AVG: divide after
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  throw std::invalid_argument("unknown reduce op '" + op + "' (known: sum, avg, max, min, product)");
}

// distAllreduce(pg, tensors, op): reduces each tensor across ranks in place. Several tensors go
// through c10d's coalesced allreduce (one flattened exchange); op 'avg' divides by the world size.
static Napi::Value Allreduce(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* g = group(info[0]);
    auto ts = tensorList(info[1], "allreduce tensor");
    auto op = info[2].As<Napi::String>().Utf8Value();
    if (ts.empty()) return info.Env().Undefined();
    heapForCollectives(bytesOf(ts));
    c10d::AllreduceOptions o;
    o.reduceOp = reduceOp(op);
    if (ts.size() == 1) {
      waitWork(g->pg->allreduce(ts, o), "allreduce");
    } else {
      c10d::AllreduceCoalescedOptions co;
      co.reduceOp = o.reduceOp;
      waitWork(g->pg->allreduce_coalesced(ts, co), "allreduce");
    }
    if (op == "avg") {
      at::NoGradGuard ng;
      for (auto& t : ts) t.div_(g->pg->getSize());
    }
    return info.Env().Undefined();
  });
}

// distBroadcast(pg, tensors, root): every tensor takes root's values, in place.
static Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* g = group(info[0]);
    auto ts = tensorList(info[1], "broadcast tensor");
    c10d::BroadcastOptions o;
    o.rootRank = info[2].As<Napi::Number>().Int32Value();
    heapForCollectives(bytesOf(ts));
    // c10d's tensor list means "one tensor per local device": one collective per tensor here.
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : ts) {
      std::vector<at::Tensor> one{t};
      works.push_back(g->pg->broadcast(one, o));
    }
    for (auto& w : works) waitWork(w, "broadcast");
    return info.Env().Undefined();
  });
}

// distAllgather(pg, tensor) -> one tensor per rank (same shape and dtype on every rank).
static Napi::Value Allgather(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* g = group(info[0]);
    at::Tensor& t = unwrapTensor(info[1], "allgather tensor");
    if (!t.is_contiguous()) throw std::invalid_argument("allgather tensor must be contiguous");
    std::vector<at::Tensor> in{t};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < g->pg->getSize(); r++) out[0].push_back(at::empty_like(in[0]));
    waitWork(g->pg->allgather(out, in), "allgather");
    auto arr = Napi::Array::New(info.Env(), out[0].size());
    for (uint32_t r = 0; r < out[0].size(); r++) arr.Set(r, wrapTensor(info.Env(), out[0][r]));
    return arr;
  });
}

static Napi::Value Barrier(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* g = group(info[0]);
    waitWork(g->pg->barrier(), "barrier");
    return info.Env().Undefined();
  });
}

// ---------------------------------------------------------------------------------------------
// The gradient reducer: PyTorch DDP's overlap of the gradient all-reduce with backward.
//
// The parameters are split into buckets (by the caller: reverse registration order, so the
// buckets fill in roughly the order backward produces the gradients). A post hook on every
// parameter's gradient accumulator copies the new gradient into its bucket's flat buffer; when a
// bucket has every gradient, its all-reduce starts (asynchronously, on Gloo's worker threads) while
// backward goes on. Buckets start strictly in index order, so every rank issues the same
// collectives in the same sequence (Gloo matches them by sequence number), whatever order its
// hooks fire in. finalize() starts what is left, waits for everything and copies the sums back.
//
// Unused parameters (no gradient in this step): prepare() walks the autograd graph from the loss
// and counts a parameter it cannot reach as ready at once, so its bucket need not wait for it (DDP's
// find_unused_parameters); one reachable whose gradient never comes is zero-filled in finalize.
// Each bucket carries, after its gradients, one slot per parameter holding 1 where this rank
// produced a gradient: after the sum it counts the ranks that did. A parameter no rank used keeps
// its gradient untouched (none, after zeroGrad), as in one process, where the optimizer then
// skips it; one used somewhere gets the weighted sum, with this rank's part counted as zero.
struct ReducerBox {
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    int64_t dataNumel = 0;
    at::Tensor flat;  // [gradients..., used flags...]
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
    bool launchedInBackward = false;
  };
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::vector<at::Tensor> params;
  std::vector<std::pair<size_t, size_t>> where;  // parameter -> (bucket, index in bucket)
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hookKeys;
  std::vector<char> ready;
  std::mutex mu;
  bool armed = false;
  bool inBackward = false;
  double weight = 1;
  size_t nextLaunch = 0;
  std::string error;

  ~ReducerBox() { release(); }

  void release() {
    for (size_t i = 0; i < accumulators.size(); i++) accumulators[i]->del_post_hook(hookKeys[i]);
    accumulators.clear();
    hookKeys.clear();
    for (auto& b : buckets) {
      if (b.work) {
        try { b.work->wait(); } catch (...) {}  // a failed group: nothing left to save
        b.work.reset();
      }
    }
    pg.reset();
  }

  // Caller holds mu.
  void launchReady() {
    while (nextLaunch < buckets.size() && buckets[nextLaunch].pending == 0) {
      auto& b = buckets[nextLaunch++];
      at::NoGradGuard ng;
      if (weight != 1) b.flat.narrow(0, 0, b.dataNumel).mul_(weight);
      std::vector<at::Tensor> one{b.flat};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      b.work = pg->allreduce(one, o);
      b.launchedInBackward = inBackward;
    }
  }

  // Caller holds mu. Copies parameter i's gradient (or zeros) into its bucket.
  void markReady(size_t i, bool fromHook) {
    auto [bi, k] = where[i];
    auto& b = buckets[bi];
    if (ready[i]) {
      // A second gradient for the same parameter in one pass: re-copy it while the bucket waits;
      // once the bucket's exchange started, the step's gradient would be wrong.
      if (b.work && error.empty())
        error = "parameter #" + std::to_string(i) + " received a second gradient after its bucket's all-reduce had started "
                "(a second backward pass through it in one step?)";
      if (b.work) return;
    }
    at::NoGradGuard ng;
    const auto& p = params[i];
    auto dst = b.flat.narrow(0, b.offsets[k], p.numel());
    auto flag = b.flat.narrow(0, b.dataNumel + static_cast<int64_t>(k), 1);
    const auto& g = p.grad();
    if (fromHook && g.defined()) {
      dst.view(p.sizes()).copy_(g);
      flag.fill_(1);
    } else {
      dst.zero_();
      flag.zero_();
    }
    if (!ready[i]) {
      ready[i] = 1;
      b.pending--;
    }
    launchReady();
  }
};

static const napi_type_tag kReducerTag = {0x6b646973744c5431ULL, 0x7265647563657207ULL};

static ReducerBox* reducer(const Napi::Value& v) {
  auto* r = unwrapObject<ReducerBox>(v, &kReducerTag, "gradient reducer");
  if (!r->pg) throw Napi::Error::New(v.Env(), "the gradient reducer was destroyed");
  return r;
}

static void waitAll(ReducerBox* r) {
  for (auto& b : r->buckets) {
    if (!b.work) continue;
    auto w = std::move(b.work);
    b.work.reset();
    waitWork(w, "gradient all-reduce");
  }
}

// distReducerCreate(pg, params, buckets: number[][]) -> reducer. Every parameter that requires a
// gradient must be in exactly one bucket; a bucket holds one dtype.
static Napi::Value ReducerCreate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* g = group(info[0]);
    auto params = tensorList(info[1], "reducer parameter");
    auto arr = info[2].As<Napi::Array>();
    auto box = std::make_unique<ReducerBox>();
    box->pg = g->pg;
    box->params = params;
    box->where.assign(params.size(), {SIZE_MAX, 0});
    for (uint32_t bi = 0; bi < arr.Length(); bi++) {
      auto idx = arr.Get(bi).As<Napi::Array>();
      ReducerBox::Bucket b;
      for (uint32_t k = 0; k < idx.Length(); k++) {
        auto i = static_cast<size_t>(idx.Get(k).As<Napi::Number>().Int64Value());
        if (i >= params.size()) throw std::invalid_argument("reducer bucket " + std::to_string(bi) + " names parameter #" + std::to_string(i) + " of " + std::to_string(params.size()));
        if (box->where[i].first != SIZE_MAX) throw std::invalid_argument("reducer parameter #" + std::to_string(i) + " is in two buckets");
        const auto& p = params[i];
        if (!p.requires_grad()) throw std::invalid_argument("reducer parameter #" + std::to_string(i) + " does not require a gradient");
        if (!b.params.empty() && params[b.params[0]].scalar_type() != p.scalar_type()) throw std::invalid_argument("reducer bucket " + std::to_string(bi) + " mixes dtypes");
        box->where[i] = {bi, b.params.size()};
        b.params.push_back(i);
        b.offsets.push_back(b.dataNumel);
        b.dataNumel += p.numel();
      }
      if (b.params.empty()) throw std::invalid_argument("reducer bucket " + std::to_string(bi) + " is empty");
      b.flat = at::zeros({b.dataNumel + static_cast<int64_t>(b.params.size())}, params[b.params[0]].options().requires_grad(false));
      heapForCollectives(static_cast<size_t>(b.flat.numel()) * b.flat.element_size());
      box->buckets.push_back(std::move(b));
    }
    for (size_t i = 0; i < params.size(); i++)
      if (box->where[i].first == SIZE_MAX) throw std::invalid_argument("reducer parameter #" + std::to_string(i) + " is in no bucket");
    box->ready.assign(params.size(), 0);
    ReducerBox* raw = box.get();
    for (size_t i = 0; i < params.size(); i++) {
      // Held here: the variable keeps only a weak reference, and a new accumulator would have no hook.
      auto acc = torch::autograd::impl::grad_accumulator(params[i]);
      if (!acc) throw std::invalid_argument("reducer parameter #" + std::to_string(i) + " is not a leaf");
      auto key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [raw, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            std::lock_guard<std::mutex> lock(raw->mu);
            if (raw->armed) raw->markReady(i, true);
            return outputs;
          }));
      box->accumulators.push_back(std::move(acc));
      box->hookKeys.push_back(key);
    }
    return wrapObject(info.Env(), box.release(), &kReducerTag);
  });
}

// distReducerPrepare(reducer, weight, roots): arms the hooks for the next backward pass from
// `roots` (the loss); each rank's gradient counts `weight` times in the sum.
static Napi::Value ReducerPrepare(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* r = reducer(info[0]);
    double weight = info[1].As<Napi::Number>().DoubleValue();
    auto roots = info[2].As<Napi::Array>();
    std::vector<at::Tensor> rootTensors;
    for (uint32_t i = 0; i < roots.Length(); i++) rootTensors.push_back(unwrapTensor(roots.Get(i), "reducer root"));
    // A step that failed half-way (e.g. a throw inside backward) may have left exchanges running.
    if (r->armed || r->inBackward) {
      for (auto& b : r->buckets) if (b.work) { try { b.work->wait(); } catch (...) {} b.work.reset(); }
    }
    // The graph nodes the loss reaches; a parameter whose accumulator is not among them gets no
    // gradient in this step.
    std::unordered_set<torch::autograd::Node*> seen;
    std::vector<torch::autograd::Node*> stack;
    for (const auto& t : rootTensors) {
      auto e = torch::autograd::impl::gradient_edge(t);
      if (e.function && seen.insert(e.function.get()).second) stack.push_back(e.function.get());
    }
    while (!stack.empty()) {
      auto* n = stack.back();
      stack.pop_back();
      for (const auto& e : n->next_edges())
        if (e.function && seen.insert(e.function.get()).second) stack.push_back(e.function.get());
    }
    std::lock_guard<std::mutex> lock(r->mu);
    r->weight = weight;
    r->nextLaunch = 0;
    r->error.clear();
    std::fill(r->ready.begin(), r->ready.end(), 0);
    for (auto& b : r->buckets) {
      b.pending = b.params.size();
      b.launchedInBackward = false;
    }
    r->armed = true;
    r->inBackward = true;  // from here on, a bucket that starts counts as overlapped
    for (size_t i = 0; i < r->params.size(); i++)
      if (!rootTensors.empty() && !seen.count(r->accumulators[i].get())) r->markReady(i, false);
    return info.Env().Undefined();
  });
}

// distReducerFinalize(reducer) -> buckets whose all-reduce started before finalize (during backward). Starts the
// rest (missing gradients as zeros), waits for all and writes the sums into the gradients.
static Napi::Value ReducerFinalize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* r = reducer(info[0]);
    {
      std::lock_guard<std::mutex> lock(r->mu);
      if (!r->armed) throw std::logic_error("gradient reducer: finalize without prepare");
      r->inBackward = false;
      for (size_t i = 0; i < r->params.size(); i++) if (!r->ready[i]) r->markReady(i, false);
      r->armed = false;
    }
    waitAll(r);
    if (!r->error.empty()) throw std::runtime_error("gradient reducer: " + r->error);
    at::NoGradGuard ng;
    uint32_t early = 0;
    for (auto& b : r->buckets) {
      early += b.launchedInBackward ? 1 : 0;
      auto used = b.flat.narrow(0, b.dataNumel, static_cast<int64_t>(b.params.size())).to(at::kDouble);
      const double* u = used.data_ptr<double>();
      for (size_t k = 0; k < b.params.size(); k++) {
        if (u[k] == 0) continue;  // no rank produced a gradient: leave it as it is
        auto& p = r->params[b.params[k]];
        auto sum = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
        auto& g = p.mutable_grad();
        if (g.defined()) g.copy_(sum);
        else g = sum.clone();
      }
    }
    return Napi::Number::New(info.Env(), early);
  });
}

// Removes the hooks and releases the group; the reducer is unusable afterwards.
static Napi::Value ReducerDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    unwrapObject<ReducerBox>(info[0], &kReducerTag, "gradient reducer")->release();
    return info.Env().Undefined();
  });
}

#else
static Napi::Value NoGloo(const Napi::CallbackInfo& info) {
  throw Napi::Error::New(info.Env(),
      "kdistill was built without Gloo's headers, so data-parallel training is unavailable: install them "
      "(Debian: apt-get install libgloo-dev) and rebuild the addon (npm rebuild kdistill)");
}
#endif

// A worker started by the launcher asks the kernel to signal it when the launcher dies, so a
// killed launcher never leaves workers training on their own (Linux only; a no-op elsewhere).
static Napi::Value SetParentDeathSignal(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
#ifdef __linux__
    int sig = info[0].As<Napi::Number>().Int32Value();
    if (prctl(PR_SET_PDEATHSIG, sig) != 0) throw std::runtime_error("prctl(PR_SET_PDEATHSIG) failed");
    return Napi::Boolean::New(info.Env(), true);
#else
    return Napi::Boolean::New(info.Env(), false);
#endif
  });
}

void initDistributed(Napi::Env env, Napi::Object exports) {
#ifdef KD_HAVE_GLOO
  exports.Set("distStoreCreate", Napi::Function::New(env, StoreCreate));
  exports.Set("distStorePort", Napi::Function::New(env, StorePort));
  exports.Set("distGroupCreate", Napi::Function::New(env, GroupCreate));
  exports.Set("distGroupDestroy", Napi::Function::New(env, GroupDestroy));
  exports.Set("distAllreduce", Napi::Function::New(env, Allreduce));
  exports.Set("distBroadcast", Napi::Function::New(env, Broadcast));
  exports.Set("distAllgather", Napi::Function::New(env, Allgather));
  exports.Set("distBarrier", Napi::Function::New(env, Barrier));
  exports.Set("distReducerCreate", Napi::Function::New(env, ReducerCreate));
  exports.Set("distReducerPrepare", Napi::Function::New(env, ReducerPrepare));
  exports.Set("distReducerFinalize", Napi::Function::New(env, ReducerFinalize));
  exports.Set("distReducerDestroy", Napi::Function::New(env, ReducerDestroy));
#else
  for (const char* name : {"distStoreCreate", "distStorePort", "distGroupCreate", "distGroupDestroy", "distAllreduce",
                           "distBroadcast", "distAllgather", "distBarrier", "distReducerCreate", "distReducerPrepare",
                           "distReducerFinalize", "distReducerDestroy"}) {
    exports.Set(name, Napi::Function::New(env, NoGloo));
  }
#endif
  exports.Set("setParentDeathSignal", Napi::Function::New(env, SetParentDeathSignal));
}

}  // namespace kd
