// Tensor handles: creation from typed arrays, read-back, metadata and disposal.
#include "common.h"
#include <atomic>
#include <cstring>
#include <sstream>

namespace kd {

const napi_type_tag kTensorTag = {0x6b646973744c5431ULL, 0x74656e736f72a001ULL};

// Two counts of tensor handles. gUndisposed: created and not disposed, whatever the garbage
// collector did since; it changes only at creation and dispose(), so it is deterministic and is
// what leak checks compare (a forgotten tensor stays counted even after GC reclaimed it).
// gHeld: handles still holding their tensor, not disposed and not yet collected; GC finalizers
// (which run during collection) lower it. Only the JS thread touches them.
static std::atomic<int64_t> gUndisposed{0};
static std::atomic<int64_t> gHeld{0};

Napi::Value wrapTensor(Napi::Env env, at::Tensor t) {
  if (t.defined()) {
    gUndisposed++;
    gHeld++;
  }
  auto* box = new TensorBox{kTensorMagic, std::move(t)};
  auto ext = Napi::External<TensorBox>::New(env, box, [](Napi::BasicEnv, TensorBox* b) {
    if (b->t.defined()) gHeld--;
    b->magic = 0;
    delete b;
  });
  return ext;
}

bool isTensorHandle(const Napi::Value& v) {
  void* data = nullptr;
  if (napi_get_value_external(v.Env(), v, &data) != napi_ok || data == nullptr) return false;
  return static_cast<TensorBox*>(data)->magic == kTensorMagic;
}

at::Tensor& unwrapTensor(const Napi::Value& v, const char* what) {
  if (!isTensorHandle(v)) throw Napi::TypeError::New(v.Env(), std::string("expected a tensor for ") + what);
  auto* box = v.As<Napi::External<TensorBox>>().Data();
  if (!box->t.defined())
    throw Napi::Error::New(v.Env(), std::string("tensor used after dispose() (") + what + ")");
  return box->t;
}

c10::ScalarType scalarTypeFromCode(int code) {
  if (code < 0 || code >= static_cast<int>(c10::ScalarType::NumOptions))
    throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  return static_cast<c10::ScalarType>(code);
}

int codeFromScalarType(c10::ScalarType st) { return static_cast<int>(st); }

std::vector<int64_t> toIntVector(const Napi::Value& v, const char* what) {
  std::vector<int64_t> out;
  if (v.IsNumber()) {
    out.push_back(v.As<Napi::Number>().Int64Value());
    return out;
  }
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of integers");
  auto arr = v.As<Napi::Array>();
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    if (!e.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of integers");
    out.push_back(e.As<Napi::Number>().Int64Value());
  }
  return out;
}

static size_t elemBytes(c10::ScalarType st) { return c10::elementSize(st); }

// fromBuffer(typedArray, shape, dtypeCode): one memcpy, no per-element JS work.
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto env = info.Env();
    if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromBuffer: expected a typed array");
    auto ta = info[0].As<Napi::TypedArray>();
    auto shape = toIntVector(info[1], "shape");
    auto st = scalarTypeFromCode(info[2].As<Napi::Number>().Int32Value());
    auto t = torch::empty(shape, torch::TensorOptions().dtype(st));
    size_t bytes = static_cast<size_t>(t.numel()) * elemBytes(st);
    if (bytes != ta.ByteLength())
      throw Napi::RangeError::New(env, "fromBuffer: shape needs " + std::to_string(bytes) + " bytes, data has " +
                                           std::to_string(ta.ByteLength()));
    auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    if (bytes) std::memcpy(t.data_ptr(), src, bytes);
    return wrapTensor(env, t);
  });
}

// toBuffer(t): a fresh typed array of the tensor's dtype holding a contiguous copy.
static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto env = info.Env();
    at::Tensor t = unwrapTensor(info[0]).detach().contiguous();
    if (t.is_conj()) t = t.resolve_conj();
    auto st = t.scalar_type();
    size_t n = static_cast<size_t>(t.numel());
    size_t bytes = n * elemBytes(st);
    auto ab = Napi::ArrayBuffer::New(env, bytes);
    if (bytes) std::memcpy(ab.Data(), t.data_ptr(), bytes);
    switch (st) {
      case c10::ScalarType::Float: return Napi::Float32Array::New(env, n, ab, 0);
      case c10::ScalarType::Double: return Napi::Float64Array::New(env, n, ab, 0);
      case c10::ScalarType::Long: return Napi::BigInt64Array::New(env, n, ab, 0);
      case c10::ScalarType::Int: return Napi::Int32Array::New(env, n, ab, 0);
      case c10::ScalarType::Short: return Napi::Int16Array::New(env, n, ab, 0);
      case c10::ScalarType::Char: return Napi::Int8Array::New(env, n, ab, 0);
      case c10::ScalarType::Byte:
      case c10::ScalarType::Bool: return Napi::Uint8Array::New(env, n, ab, 0);
      case c10::ScalarType::Half:
      case c10::ScalarType::BFloat16: return Napi::Uint16Array::New(env, n, ab, 0);
      default: throw Napi::TypeError::New(env, std::string("toBuffer: unsupported dtype ") + c10::toString(st));
    }
  });
}

static Napi::Value Item(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto& t = unwrapTensor(info[0]);
    if (t.numel() != 1)
      throw Napi::RangeError::New(info.Env(), "item(): tensor has " + std::to_string(t.numel()) +
                                                  " elements, expected exactly 1");
    auto s = t.item();
    if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
    return Napi::Number::New(info.Env(), s.toDouble());
  });
}

static Napi::Value Shape(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto& t = unwrapTensor(info[0]);
    auto sizes = t.sizes();
    auto arr = Napi::Array::New(info.Env(), sizes.size());
    for (size_t i = 0; i < sizes.size(); i++) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
    return arr;
  });
}

static Napi::Value Dtype(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), codeFromScalarType(unwrapTensor(info[0]).scalar_type()));
  });
}

static Napi::Value Numel(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(unwrapTensor(info[0]).numel()));
  });
}

static Napi::Value Dim(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::Number::New(info.Env(), unwrapTensor(info[0]).dim()); });
}

static Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (isTensorHandle(info[0])) {
    auto* box = info[0].As<Napi::External<TensorBox>>().Data();
    if (box->t.defined()) {
      box->t.reset();
      gUndisposed--;
      gHeld--;
    }
  }
  return info.Env().Undefined();
}

static Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gUndisposed.load()));
}

static Napi::Value HeldTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gHeld.load()));
}

static Napi::Value Device(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), unwrapTensor(info[0]).device().str()); });
}

static Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  if (!isTensorHandle(info[0])) return Napi::Boolean::New(info.Env(), true);
  return Napi::Boolean::New(info.Env(), !info[0].As<Napi::External<TensorBox>>().Data()->t.defined());
}

static Napi::Value ToString(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::ostringstream os;
    os << unwrapTensor(info[0]);
    return Napi::String::New(info.Env(), os.str());
  });
}

// Bytes held by the tensor's storage (views share storage; used for memory accounting).
static Napi::Value StorageBytes(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto& t = unwrapTensor(info[0]);
    return Napi::Number::New(info.Env(), t.has_storage() ? static_cast<double>(t.storage().nbytes()) : 0.0);
  });
}

static Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), unwrapTensor(info[0]).is_contiguous()); });
}

void initTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("item", Napi::Function::New(env, Item));
  exports.Set("shape", Napi::Function::New(env, Shape));
  exports.Set("dtype", Napi::Function::New(env, Dtype));
  exports.Set("numel", Napi::Function::New(env, Numel));
  exports.Set("dim", Napi::Function::New(env, Dim));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("isDisposed", Napi::Function::New(env, IsDisposed));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors));
  exports.Set("heldTensors", Napi::Function::New(env, HeldTensors));
  exports.Set("device", Napi::Function::New(env, Device));
  exports.Set("toString", Napi::Function::New(env, ToString));
  exports.Set("storageBytes", Napi::Function::New(env, StorageBytes));
  exports.Set("isContiguous", Napi::Function::New(env, IsContiguous));
}

}  // namespace kd
