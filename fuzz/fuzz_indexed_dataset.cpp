// MMIDIDX reader: the input is `<idx bytes>` SEP `<bin bytes>` (fuzz_util.h), written as PREFIX.idx and
// PREFIX.bin and opened as `loom train --data-path PREFIX` does; every sequence the index accepts is then
// read through get() and raw(), as the GPT dataset reads samples.
#include <algorithm>

#include "fuzz_util.h"
#include "loom/data/indexed_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const auto parts = fuzz::split_parts(data, size, 2);
  const std::string prefix = fuzz::scratch_path("ds");
  fuzz::write_file(data::index_file_path(prefix), parts[0]);
  fuzz::write_file(data::data_file_path(prefix), parts[1]);
  fuzz::expect_user_errors_only([&] {
    const data::IndexedDataset ds(prefix);
    std::vector<int32_t> buf;
    const int64_t n = std::min<int64_t>(ds.size(), 4096);
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
      const int32_t len = ds.sequence_length(i);
      buf.resize(size_t(len));
      ds.get(i, 0, len, buf.data());
      if (len > 0) {
        ds.get(i, len - 1, 1, buf.data());
        sum += *static_cast<const uint8_t*>(ds.raw(i));
      }
      for (int32_t v : buf) sum += v;
    }
    for (int64_t i = 0; i < std::min<int64_t>(ds.doc_count(), 4096); i++) sum += ds.doc_index(i);
    const auto sizes = ds.sizes();
    if (int64_t(sizes.size()) != ds.size()) std::abort();
    if (sum == 42) std::fputc('\0', stderr);  // keep the reads observable
  });
  return 0;
}
