#pragma once
// Megatron's HuggingFaceTokenizer for byte-level BPE files: a Hugging Face tokenizer.json such as
// Llama 3's (or GPT-2's), read without Python.
//
// Accepted: model.type "BPE" with vocab and merges (merges as "a b" strings or ["a", "b"] pairs; a
// pair listed twice takes its later rank, as Hugging Face's map does), model.ignore_merges; no
// normalizer; pre_tokenizer ByteLevel (use_regex: GPT-2's pattern; add_prefix_space honoured) or
// Sequence[Split(Regex, behavior "Isolated"), ByteLevel(use_regex false)] as Llama 3 has, the Split
// regex run by PCRE2 as js_compatible_pattern() rewrites it. added_tokens are decoded to their text
// and count towards vocab_size(), which is Megatron's len(tokenizer): the highest id + 1.
//
// eod(): the special token the post_processor's TemplateProcessing appends after a single sequence
// when there is one; otherwise the first of <|end_of_text|>, <|endoftext|>, </s>, <eos> that the file
// has (Llama 3's post_processor only prepends <|begin_of_text|>, so its eod is <|end_of_text|>, 128001;
// instruct files that name <|eot_id|> as eos do so in tokenizer_config.json, which is not read).
// bos(): the special token the TemplateProcessing puts first, otherwise the first of
// <|begin_of_text|>, <s>, <bos>. Either is -1 when none is found.
//
// Anything else (not JSON, no model/vocab/merges, a merge naming or making a token that is not in the
// vocabulary, another model type, normalizer or pre-tokenizer, a missing byte) is a UserError
// "tokenizer file '<path>': <what is wrong>".
#include <memory>
#include <string>

#include "loom/data/tokenizer.h"

namespace loom::data {

// `path` is a tokenizer.json, or a directory holding one (what Megatron's --tokenizer-model names).
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);

}  // namespace loom::data
