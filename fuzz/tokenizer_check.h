#pragma once
// What every tokenizer target does with a tokenizer its input produced: encode the input's text part
// and decode the ids, holding the implementation to tokenizer.h's contract (ids inside the vocabulary,
// decode(encode(x)) == repair_utf8(x) for the byte-level ones).
#include <cstdlib>
#include <string_view>

#include "loom/data/tokenizer.h"

namespace loom::fuzz {

inline void exercise_tokenizer(const data::Tokenizer& tok, std::string_view text, bool exact_roundtrip) {
  const std::vector<int32_t> ids = tok.encode(text);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();  // an id the embedding table does not have
  const std::string back = tok.decode(ids);
  if (exact_roundtrip && back != data::repair_utf8(text)) std::abort();
  if (tok.eod() >= tok.vocab_size() || tok.bos() >= tok.vocab_size()) std::abort();
}

}  // namespace loom::fuzz
