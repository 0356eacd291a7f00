// Shared pieces of the kdistill addon: how tensors and other libtorch objects cross into
// JavaScript, and how C++ exceptions become JavaScript errors instead of aborting the process.
#pragma once
// Finalizers that run synchronously inside V8's garbage collection ("basic" finalizers, Node-API's
// experimental version). With the stable version Node defers every finalizer to a later
// event-loop turn, so a synchronous training loop (thousands of steps, no await) piled up the
// bookkeeping of every tensor handle it created, disposed or not: ~300 bytes to 2 KB per handle,
// hundreds of MB over a long run. Our finalizers only free C++ objects and never call into
// JavaScript, which is exactly what basic finalizers allow. (binding.gyp passes NAPI_VERSION=8;
// this header overrides it for every translation unit, since each includes it first.)
#undef NAPI_VERSION
#define NAPI_EXPERIMENTAL
#define NAPI_VERSION 2147483647 /* NAPI_VERSION_EXPERIMENTAL */
#include <napi.h>
#include <torch/torch.h>
#include <torch/script.h>

namespace kd {

// A tensor handle: a JS External owning one of these. dispose() resets `t`, the GC finalizer
// deletes the box. A reset box means "disposed" and is reported as such when used again.
// Tensor handles are recognised by `magic` rather than a Node-API type tag: tagging costs a
// private-property write per created tensor (~0.3 µs, a sixth of a small op). Every External
// this addon creates points at a heap object of at least 8 bytes, so reading `magic` through a
// handle of another kind is safe and never matches.
constexpr uint64_t kTensorMagic = 0x6b6454656e736f72ULL;  // "kdTensor"
struct TensorBox {
  uint64_t magic = kTensorMagic;
  at::Tensor t;
};

extern const napi_type_tag kTensorTag;
extern const napi_type_tag kGeneratorTag;
extern const napi_type_tag kModuleTag;
extern const napi_type_tag kOptimizerTag;

Napi::Value wrapTensor(Napi::Env env, at::Tensor t);
at::Tensor& unwrapTensor(const Napi::Value& v, const char* what = "tensor");
bool isTensorHandle(const Napi::Value& v);

// Generic owned-object handle for modules, optimizers and generators.
template <typename T>
Napi::Value wrapObject(Napi::Env env, T* obj, const napi_type_tag* tag) {
  auto ext = Napi::External<T>::New(env, obj, [](Napi::BasicEnv, T* p) { delete p; });
  napi_type_tag_object(env, ext, tag);
  return ext;
}

template <typename T>
T* unwrapObject(const Napi::Value& v, const napi_type_tag* tag, const char* what) {
  bool ok = false;
  if (v.IsExternal()) napi_check_object_type_tag(v.Env(), v, tag, &ok);
  if (!ok) throw Napi::TypeError::New(v.Env(), std::string("expected a ") + what + " handle");
  return v.As<Napi::External<T>>().Data();
}

c10::ScalarType scalarTypeFromCode(int code);
int codeFromScalarType(c10::ScalarType st);
std::vector<int64_t> toIntVector(const Napi::Value& v, const char* what);
Napi::Value ivalueToJs(Napi::Env env, const c10::IValue& v);

// Every exported function runs inside this, so c10::Error and std::exception become JS errors.
template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

void initAllocator(Napi::Env env, Napi::Object exports);
void initTensor(Napi::Env env, Napi::Object exports);
void initDispatch(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
void initOptim(Napi::Env env, Napi::Object exports);
void initJit(Napi::Env env, Napi::Object exports);
void initDistributed(Napi::Env env, Napi::Object exports);
void initProfiler(Napi::Env env, Napi::Object exports);

}  // namespace kd
