// Data-parallel collectives on libtorch's own c10d engine: a TCPStore for rendezvous and a
// ProcessGroupGloo for allreduce/broadcast/allgather/barrier on CPU tensors. Every call blocks
// until its collective finishes; a dead peer or a timeout comes back as a JS Error (Gloo reports
// it on the Work object), never as an abort, so the trainer can end the run cleanly.
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
    // One collective is in flight at a time (each call waits), so one worker thread suffices and
    // leaves the cores to libtorch's compute threads.
    opts->threads = 1;
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
#else
  for (const char* name : {"distStoreCreate", "distStorePort", "distGroupCreate", "distGroupDestroy", "distAllreduce",
                           "distBroadcast", "distAllgather", "distBarrier"}) {
    exports.Set(name, Napi::Function::New(env, NoGloo));
  }
#endif
  exports.Set("setParentDeathSignal", Napi::Function::New(env, SetParentDeathSignal));
}

}  // namespace kd
