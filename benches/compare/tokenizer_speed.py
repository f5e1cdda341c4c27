"""Reference side of the tokenizer benchmark: tiktoken and Hugging Face `tokenizers`.

Measures GPT-2 encoding throughput (MB/s, one thread and all threads) with tiktoken and with
`tokenizers`, and the time to train a 4,096-token byte-level BPE on Tiny Shakespeare with
`tokenizers`. Both GPT-2 tokenizers are built from the repository's own encoder.json and
vocab.bpe, so nothing is downloaded. Prints one JSON object; `cargo bench --bench
tokenizer_speed` runs this script and prints both sides with their ratios.

Usage: python benches/compare/tokenizer_speed.py [--repeats N] FILE...
"""

import argparse
import json
import os
import statistics
import time

import tiktoken
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPT2 = os.path.join(ROOT, "llm", "assets", "gpt2")
SHAKESPEARE = os.path.join(ROOT, "llm", "assets", "tinyshakespeare.txt")
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_decoder():
    """GPT-2's byte-to-unicode table, inverted: printable character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    shifted = [b for b in range(256) if b not in printable]
    table = {chr(b): b for b in printable}
    table.update({chr(256 + k): b for k, b in enumerate(shifted)})
    return table


def tiktoken_gpt2():
    """tiktoken's r50k_base, built from encoder.json (the ranks are the ids)."""
    decode = byte_decoder()
    with open(os.path.join(GPT2, "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    ranks = {bytes(decode[c] for c in token): rank
             for token, rank in encoder.items() if token != "<|endoftext|>"}
    return tiktoken.Encoding("r50k_base", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def hf_gpt2():
    """Hugging Face `tokenizers` with GPT-2's vocabulary and merges."""
    bpe = models.BPE.from_file(os.path.join(GPT2, "encoder.json"), os.path.join(GPT2, "vocab.bpe"))
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pieces(text, n):
    """`text` cut at line breaks into about `n` pieces, for the batch (multi-threaded) APIs."""
    lines = text.splitlines(keepends=True)
    step = max(1, len(lines) // n)
    return ["".join(lines[i:i + step]) for i in range(0, len(lines), step)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = os.cpu_count()
    tik, hf = tiktoken_gpt2(), hf_gpt2()
    results = {"threads": threads, "encode": [], "train": {}}
    for path in [SHAKESPEARE, *args.files]:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        mb = len(text.encode("utf-8")) / 1e6
        batch = pieces(text, 16 * threads)
        assert tik.encode_ordinary(text) == hf.encode(text).ids
        row = {"file": os.path.basename(path), "mb": mb}
        row["tiktoken_1"] = mb / median_seconds(lambda: tik.encode_ordinary(text), args.repeats)
        row["tiktoken_all"] = mb / median_seconds(
            lambda: tik.encode_ordinary_batch(batch, num_threads=threads), args.repeats)
        row["hf_1"] = mb / median_seconds(lambda: hf.encode(text), args.repeats)
        row["hf_all"] = mb / median_seconds(lambda: hf.encode_batch(batch), args.repeats)
        results["encode"].append(row)

    def train():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train([SHAKESPEARE], trainer)

    results["train"]["hf_seconds"] = median_seconds(train, max(1, args.repeats // 2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
