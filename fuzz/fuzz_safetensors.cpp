// safetensors reader (checkpoint shards, `convert --from hf` weights, `--load FILE`): the input is the
// whole file. Every tensor the header accepts is read to its last byte.
#include "fuzz_util.h"
#include "loom/ckpt/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const std::string path =
      fuzz::write_scratch("model.safetensors", std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_user_errors_only([&] {
    const SafetensorsFile f(path);
    unsigned sum = 0;
    for (const auto& t : f.tensors()) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (t.bytes) sum += p[0] + p[t.bytes - 1];
      if (&f.get(t.name) == nullptr) std::abort();
    }
    for (const auto& [k, v] : f.metadata()) sum += unsigned(k.size() + v.size());
    if (sum == 42) std::fputc('\0', stderr);
  });
  return 0;
}
