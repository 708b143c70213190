#pragma once
// Megatron's Llama 2 style SentencePiece tokenizer (--tokenizer-type SentencePieceTokenizer): a
// SentencePiece .model run by Debian's libsentencepiece, so ids are the library's own (checked
// against python3-sentencepiece). vocab_size() = GetPieceSize(), eod() = eos_id(), bos() = bos_id()
// (-1 when the model has none). Invalid UTF-8 is repaired first, as for the other tokenizers; the
// model's own normaliser then runs, so decode() is SentencePiece's detokenisation, not a byte-exact
// inverse. The library's header stays inside sentencepiece_tokenizer.cpp.
#include <memory>
#include <string>

#include "loom/data/tokenizer.h"

namespace loom::data {

// UserError "tokenizer file '<path>': ..." when the file cannot be read or is not a SentencePiece model.
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path);

}  // namespace loom::data
