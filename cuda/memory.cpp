// CUDA runtime plumbing: error checking, theta's stream per device, the device guard, the
// caching device allocator and host <-> device transfers.
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/runtime.hpp"
#include "theta/error.hpp"

namespace th::detail {

namespace cuda {

void check(cudaError_t e, const char* call) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw DeviceError(std::string("CUDA: ") + call + " failed: " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

namespace {
constexpr int kMaxDevices = 64;

int device_count() {
  static const int n = [] {
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) {  // no driver or no device: the count is untouched
      cudaGetLastError();
      return 0;
    }
    return c;
  }();
  return n;
}

void check_device(int device) {
  const int n = device_count();
  if (n == 0) throw DeviceError("cuda:" + std::to_string(device) + ": no CUDA device is available");
  if (device < 0 || device >= n || device >= kMaxDevices)
    throw DeviceError("cuda:" + std::to_string(device) + " does not exist (" + std::to_string(n) + " CUDA device" +
                      (n == 1 ? "" : "s") + " present)");
}

// ---- caching allocator --------------------------------------------------------------------
// Blocks are rounded (512 B below 1 MiB, 2 MiB above) and kept on per-device free lists by
// rounded size when their Buffer dies; all of a device's work runs on its one stream, so a
// block freed by the host can be handed to the next allocation at once (its last reader is
// queued before the new owner's first writer). When cudaMalloc runs out, the cached blocks
// are released and it is tried once more.
struct Allocator {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks[kMaxDevices];
  std::unordered_map<void*, int> owner;  // block -> device
  DeviceMemoryStats stats;
};

Allocator& allocator() {
  static Allocator* a = new Allocator;  // NOTE: never destroyed: cudaFree after the runtime's exit is an error
  return *a;
}

std::size_t rounded(std::size_t bytes) {
  const std::size_t q = bytes < (std::size_t(1) << 20) ? 512 : (std::size_t(2) << 20);
  return (std::max<std::size_t>(bytes, 1) + q - 1) / q * q;
}

void release_cached(Allocator& a, int device) {
  for (auto& [size, list] : a.free_blocks[device]) {
    for (void* p : list) {
      cudaFree(p);
      a.owner.erase(p);
      a.stats.bytes_cached -= size;
    }
    list.clear();
  }
}

void cached_free(void* p, std::size_t bytes) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.owner.find(p);
  if (it == a.owner.end()) return;
  const std::size_t size = rounded(bytes);
  a.free_blocks[it->second][size].push_back(p);
  a.stats.bytes_cached += size;
}
}  // namespace

cudaStream_t stream(int device) {
  static std::once_flag once[kMaxDevices];
  static cudaStream_t streams[kMaxDevices];
  check_device(device);
  std::call_once(once[device], [device] {
    DeviceGuard g(device);
    THETA_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking));
  });
  return streams[device];
}

DeviceGuard::DeviceGuard(int device) {
  check_device(device);
  THETA_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) THETA_CUDA_CHECK(cudaSetDevice(device));
}
DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0) cudaSetDevice(previous_);
}

std::shared_ptr<Buffer> alloc(std::size_t bytes, int device) {
  check_device(device);
  Allocator& a = allocator();
  const std::size_t size = rounded(bytes);
  auto b = std::make_shared<Buffer>();
  b->bytes = bytes;
  b->device = th::cuda(device);
  {
    std::lock_guard<std::mutex> lock(a.mu);
    auto& list = a.free_blocks[device][size];
    if (!list.empty()) {
      b->data = list.back();
      list.pop_back();
      a.stats.bytes_cached -= size;
      ++a.stats.cache_hits;
      b->free_fn = &cached_free;
      return b;
    }
  }
  DeviceGuard g(device);
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::lock_guard<std::mutex> lock(a.mu);
    THETA_CUDA_CHECK(cudaStreamSynchronize(stream(device)));  // cached blocks may still be read
    release_cached(a, device);
    e = cudaMalloc(&p, size);
  }
  if (e != cudaSuccess)
    check(e, ("cudaMalloc(" + std::to_string(size) + " bytes) on cuda:" + std::to_string(device)).c_str());
  std::lock_guard<std::mutex> lock(a.mu);
  a.owner[p] = device;
  ++a.stats.device_mallocs;
  b->data = p;
  b->free_fn = &cached_free;
  return b;
}

}  // namespace cuda

DeviceMemoryStats cuda_memory_stats() {
  cuda::Allocator& a = cuda::allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats;
}

int cuda_device_count() noexcept { return cuda::device_count(); }

void cuda_synchronize(Device device) {
  if (device.type != Device::Type::cuda) return;
  THETA_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(device.index)));
}

Storage transfer(const Storage& s, Device to) {
  if (s.device() == to) return s;
  const Storage c = contiguous_as(s, s.dtype);  // dense on its own device first
  Storage d = alloc_storage(s.dtype, s.shape, to);
  const std::size_t bytes = std::size_t(s.size()) * dtype_size(s.dtype);
  if (bytes == 0) return d;
  const Device from = s.device();
  if (from.type == Device::Type::cpu) {
    // From pageable host memory the call returns once the source has been staged, so the
    // host block may be reused at once.
    cuda::DeviceGuard g(to.index);
    THETA_CUDA_CHECK(cudaMemcpyAsync(d.bytes(), c.bytes(), bytes, cudaMemcpyHostToDevice, cuda::stream(to.index)));
  } else if (to.type == Device::Type::cpu) {
    cuda::DeviceGuard g(from.index);
    THETA_CUDA_CHECK(cudaMemcpyAsync(d.bytes(), c.bytes(), bytes, cudaMemcpyDeviceToHost, cuda::stream(from.index)));
    THETA_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(from.index)));
  } else {  // GPU to GPU: both streams drained, then a peer copy
    THETA_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(from.index)));
    THETA_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(to.index)));
    THETA_CUDA_CHECK(cudaMemcpyPeer(d.bytes(), to.index, c.bytes(), from.index, bytes));
  }
  return d;
}

}  // namespace th::detail
