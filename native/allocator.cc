// kdistill's CPU allocator for tensor storage: large buffers come from their own page mappings and
// freed ones are cached by size for reuse; small ones come from malloc.
//
// Why: a training step frees and reallocates the same activation and gradient buffers every
// step. glibc hands freed blocks above 128 KiB back to the OS, so every step page-faulted them in
// again (~5-8k faults, +40% time per small-CNN step). Keeping them in glibc's heap instead
// (mallopt) removed the faults but fragmented the heap: the small, longer-lived C++ objects of
// each step (autograd nodes, handle boxes freed at GC) land between the big blocks, and the heap
// grew to ~3x the bytes in use over a few thousand steps (seen: 57 -> 155 MiB, in use flat at
// 52 MiB; RSS +17 to +100 MiB, varying run to run). Separate mappings cannot fragment each other,
// and the cache (least recently freed evicted first) keeps the steady state fault-free.
// The cache holds up to 512 MiB or, when more, twice the peak of bytes in use since the last
// emptyCache(): a step whose activations and gradients exceed a fixed bound evicted the excess
// when it freed them and faulted it in again the next step (WRN-16-4, batch 64: ~33,000 page
// faults per step with a 512 MiB bound). Why more than the peak (which still left ~10,000
// faults): blocks of different size classes do not stand in for each other, so a step reuses
// without faults only when the cache holds, per class, the most blocks of it live at once,
// and that sum exceeds the peak of the total (WRN-16-4: by ~15 %). Twice the peak bounds it.
// KDISTILL_TENSOR_CACHE_MB=N sets a fixed bound of N MiB instead. KDISTILL_SYSTEM_ALLOCATOR=1 keeps libtorch's own (and
// glibc's adaptive mmap threshold, pinned below).
#include "common.h"
#include <c10/core/CPUAllocator.h>
#include <malloc.h>
#include <sys/mman.h>
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace kd {
namespace {

constexpr size_t kHeader = 64;             // keeps data at libtorch's 64-byte alignment
constexpr size_t kLarge = 64 << 10;        // from here on, buffers get their own mapping
constexpr size_t kPage = 4096;
constexpr uint32_t kMagic = 0x6b64416c;    // "kdAl"

// Lives in the first kHeader bytes of every block; the data follows it.
struct Header {
  uint32_t magic;
  uint32_t large;
  size_t size;  // the mapping's length (large) or the malloc'd length (small)
  Header* lruPrev;
  Header* lruNext;
  Header* sizePrev;
  Header* sizeNext;
};
static_assert(sizeof(Header) <= kHeader, "header must fit before the data");

// Rounds a large block to its size class: whole pages, at most 1/8 above the request, so blocks
// of nearly equal size are interchangeable. The rounded tail is address space, never touched
// unless written, so it costs no memory.
size_t sizeClass(size_t total) {
  size_t step = kPage;
  while (step * 16 <= total) step *= 2;
  return (total + step - 1) / step * step;
}

class TensorAllocator final : public c10::Allocator {
 public:
  // cap: the cache's bound in bytes; adaptive: also keep up to twice the peak of bytes in use.
  TensorAllocator(size_t cap, bool adaptive) : cap_(cap), adaptive_(adaptive) {}

  c10::DataPtr allocate(size_t n) const override {
    void* data = self()->take(n);
    return {data, data, &TensorAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &TensorAllocator::release; }

  struct Stats { size_t inUse; size_t cached; };
  Stats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {inUse_, cached_};
  }

  void emptyCache() {
    std::lock_guard<std::mutex> lock(mu_);
    evictTo(0);
    peak_ = inUse_;  // a peak of the past (e.g. a large evaluation batch) is not held for again
  }

  static TensorAllocator* instance;

 private:
  TensorAllocator* self() const { return const_cast<TensorAllocator*>(this); }

  void* take(size_t n) {
    size_t total = n + kHeader;
    Header* h = nullptr;
    if (total < kLarge) {
      h = static_cast<Header*>(std::malloc(total));
      if (!h) throw std::bad_alloc();
      h->large = 0;
      h->size = total;
    } else {
      size_t size = sizeClass(total);
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = bySize_.find(size);
        if (it != bySize_.end() && it->second) {
          h = it->second;
          unlinkCached(h);
        }
        inUse_ += size;
        if (inUse_ > peak_) peak_ = inUse_;
      }
      if (!h) {
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
          std::lock_guard<std::mutex> lock(mu_);
          inUse_ -= size;
          // libtorch turns this into its usual "DefaultCPUAllocator: not enough memory" error.
          TORCH_CHECK(false, "kdistill tensor allocator: not enough memory: you tried to allocate ", n, " bytes");
        }
        h = static_cast<Header*>(p);
        h->large = 1;
        h->size = size;
      }
    }
    h->magic = kMagic;
    return reinterpret_cast<char*>(h) + kHeader;
  }

  static void release(void* data) {
    if (!data) return;
    auto* h = reinterpret_cast<Header*>(static_cast<char*>(data) - kHeader);
    TORCH_INTERNAL_ASSERT(h->magic == kMagic, "kdistill tensor allocator: freeing a block it did not allocate");
    if (!h->large) {
      h->magic = 0;
      std::free(h);
      return;
    }
    instance->cache(h);
  }

  void cache(Header* h) {
    std::lock_guard<std::mutex> lock(mu_);
    inUse_ -= h->size;
    Header*& head = bySize_[h->size];
    h->sizePrev = nullptr;
    h->sizeNext = head;
    if (head) head->sizePrev = h;
    head = h;
    h->lruPrev = nullptr;
    h->lruNext = lruHead_;
    if (lruHead_) lruHead_->lruPrev = h;
    lruHead_ = h;
    if (!lruTail_) lruTail_ = h;
    cached_ += h->size;
    const size_t limit = adaptive_ ? std::max(cap_, 2 * peak_) : cap_;
    if (cached_ > limit) evictTo(limit);
  }

  // Caller holds mu_.
  void unlinkCached(Header* h) {
    if (h->sizePrev) h->sizePrev->sizeNext = h->sizeNext;
    else bySize_[h->size] = h->sizeNext;
    if (h->sizeNext) h->sizeNext->sizePrev = h->sizePrev;
    if (h->lruPrev) h->lruPrev->lruNext = h->lruNext;
    else lruHead_ = h->lruNext;
    if (h->lruNext) h->lruNext->lruPrev = h->lruPrev;
    else lruTail_ = h->lruPrev;
    cached_ -= h->size;
  }

  // Caller holds mu_. Unmaps the least recently freed blocks until at most `limit` bytes stay.
  void evictTo(size_t limit) {
    while (cached_ > limit && lruTail_) {
      Header* h = lruTail_;
      unlinkCached(h);
      h->magic = 0;
      munmap(h, h->size);
    }
  }

  const size_t cap_;
  const bool adaptive_;
  size_t peak_ = 0;  // bytes in use, highest since the last emptyCache()
  std::mutex mu_;
  std::unordered_map<size_t, Header*> bySize_;  // most recently freed first
  Header* lruHead_ = nullptr;                   // most recently freed
  Header* lruTail_ = nullptr;                   // least recently freed
  size_t inUse_ = 0;
  size_t cached_ = 0;
};

TensorAllocator* TensorAllocator::instance = nullptr;

bool envIs(const char* name, char value) {
  const char* v = std::getenv(name);
  return v && v[0] == value;
}

// Installed once per process (worker threads load the addon again); never destroyed, since
// tensors may be freed during process teardown.
void install() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (envIs("KDISTILL_SYSTEM_ALLOCATOR", '1')) return;
    // glibc raises its mmap threshold each time a large mapped block is freed (up to 32 MiB), after
    // which large non-tensor buffers (file reads, checkpoints, JS ArrayBuffers freed only at GC)
    // land in the heap between small objects and fragment it: a 20k-step training run held
    // 6 MiB more heap every ~10k steps with the bytes in use flat. Pinning the threshold at its
    // default keeps them in their own mappings; tensor buffers do not go through malloc at all.
    // Process-group members raise it again for Gloo's per-collective scratch buffers
    // (heapForCollectives in distributed.cc).
    mallopt(M_MMAP_THRESHOLD, 128 << 10);
    size_t capMb = 512;
    const char* v = std::getenv("KDISTILL_TENSOR_CACHE_MB");
    if (v) capMb = std::strtoull(v, nullptr, 10);
    TensorAllocator::instance = new TensorAllocator(capMb << 20, /*adaptive=*/v == nullptr);
    c10::SetCPUAllocator(TensorAllocator::instance, /*priority=*/1);
  });
}

// The process's native memory: what the C heap has handed out and not taken back (all arenas
// and mmapped blocks) plus tensor buffers in use is "allocated", the leak criterion; unlike RSS
// it does not depend on how freed memory is pooled. "reserved" adds what is held for reuse.
// -1 where glibc's mallinfo2 is not available.
Napi::Value NativeMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = TensorAllocator::instance ? TensorAllocator::instance->stats() : TensorAllocator::Stats{0, 0};
  double tensors = static_cast<double>(s.inUse), cached = static_cast<double>(s.cached);
  Napi::Object out = Napi::Object::New(env);
  out.Set("tensorInUse", Napi::Number::New(env, tensors));
  out.Set("tensorCached", Napi::Number::New(env, cached));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 m = mallinfo2();
  out.Set("allocated", Napi::Number::New(env, static_cast<double>(m.uordblks + m.hblkhd) + tensors));
  out.Set("reserved", Napi::Number::New(env, static_cast<double>(m.arena + m.hblkhd) + tensors + cached));
#else
  out.Set("allocated", Napi::Number::New(env, -1));
  out.Set("reserved", Napi::Number::New(env, -1));
#endif
  return out;
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  if (TensorAllocator::instance) TensorAllocator::instance->emptyCache();
  return info.Env().Undefined();
}

}  // namespace

void initAllocator(Napi::Env env, Napi::Object exports) {
  install();
  exports.Set("nativeMemory", Napi::Function::New(env, NativeMemory));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache));
}

}  // namespace kd
