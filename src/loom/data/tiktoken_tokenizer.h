#pragma once
// Megatron's TikTokenizer as Meta's Llama 3 tokenizer.py defines it: a tiktoken rank file (Llama 3's
// original tokenizer.model: one "<base64 token bytes> <rank>" per line) with Llama 3's pattern
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (through js_compatible_pattern()) and 256 special tokens after the ranks, in Meta's order:
// <|begin_of_text|> = n, <|end_of_text|> = n+1, <|reserved_special_token_0..3|>, <|start_header_id|>,
// <|end_header_id|>, <|reserved_special_token_4|>, <|eot_id|>, <|reserved_special_token_5..250|>
// (n = 128000 for Llama 3). eod() = <|end_of_text|>, bos() = <|begin_of_text|>, vocab_size() = n + 256.
//
// BPE by ranks: the adjacent pair whose concatenation has the lowest rank merges first (tiktoken's
// byte_pair_merge), which gives the same ids as the equivalent tokenizer.json. Like tokenizer.py the
// text is encoded in parts of at most 400,000 code points and 25,000 consecutive (non-)white-space
// code points (see byte_level_bpe.h), which is what bounds the work on a 50 MB run of letters.
//
// Errors (a line that is not "<base64> <rank>", ranks that are not 0..n-1 each once, a token listed
// twice, a missing single byte) are UserErrors "tokenizer file '<path>' line N: <what>".
#include <memory>
#include <string>

#include "loom/data/tokenizer.h"

namespace loom::data {

std::unique_ptr<Tokenizer> load_tiktoken_tokenizer(const std::string& path);

// Meta's Llama 3 special tokens, in id order after the ranks.
std::vector<std::string> llama3_special_tokens();

// Llama 3's pre-tokenisation pattern as tiktoken and tokenizer.json spell it.
extern const char kLlama3SplitPattern[];

}  // namespace loom::data
