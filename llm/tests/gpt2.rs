//! GPT-2's tokenizer gives exactly tiktoken's `r50k_base` ids.

use llm::tokenizer::{encode_parallel, Gpt2Tokenizer, Special, Tokenizer};
use proptest::prelude::*;
use std::path::Path;
use tiktoken_rs::{r50k_base_singleton, CoreBPE};

fn oracle() -> &'static CoreBPE {
    r50k_base_singleton()
}

/// Texts that exercise every branch of the split pattern and of the merges.
const CORPUS: &[&str] = &[
    "",
    "Hello, world! This is a test of the GPT-2 tokenizer.",
    "fn main() {\n    let x: Vec<u32> = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n",
    "def f(a, b=2):\n\treturn a ** b  # power\n",
    "3.14159 2718281828 1,000,000 -42 0x1F 1e-9 12345678901234567890",
    "don't I'll we've they're she'd it's DON'T I'LL 'quoted' rock'n'roll",
    "spaces:    four, tabs:\t\t\ttwo, newlines:\n\n\n, mixed: \t \n \r\n end   ",
    "   leading and trailing   ",
    "café naïve résumé Ångström",
    "cafe\u{301} nai\u{308}ve re\u{301}sume\u{301}",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "emoji 👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 heart ❤️ zwj\u{200d}alone",
    "nul\0byte and \u{1}\u{7f} controls",
    "<|endoftext|>",
    "before<|endoftext|>after <|endoftext|> <|endoftext",
    "Привет, мир! Γειά σου κόσμε! مرحبا بالعالم",
    "x²³ ½ Ⅻ 𝟘𝟙𝟚 ① ٣٤٥",
    "\u{a0}non-breaking\u{3000}ideographic\u{2003}em space",
];

#[test]
fn equals_tiktoken_on_a_varied_corpus() {
    let tok = Gpt2Tokenizer::new();
    for text in CORPUS {
        let ours = tok.encode_with(text, Special::AsText).unwrap();
        assert_eq!(ours, oracle().encode_ordinary(text), "as text: {text:?}");
        let ours = tok.encode_with(text, Special::Allow).unwrap();
        assert_eq!(
            ours,
            oracle().encode_with_special_tokens(text),
            "allowed: {text:?}"
        );
        assert_eq!(tok.decode(&ours).unwrap(), *text);
    }
}

#[test]
fn endoftext_as_text_and_as_special_token() {
    let tok = Gpt2Tokenizer::new();
    assert_eq!(tok.encode("<|endoftext|>").unwrap(), [50256]);
    assert_eq!(tok.eot_token(), Some(50256));
    assert_eq!(tok.vocab_size(), 50257);
    let plain = tok.encode_with("<|endoftext|>", Special::AsText).unwrap();
    assert_eq!(plain, [27, 91, 437, 1659, 5239, 91, 29]);
    let err = tok
        .encode_with("a <|endoftext|>", Special::Reject)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the text contains the special token \"<|endoftext|>\" at byte 2, and special tokens are rejected"
    );
    assert!(tok.encode("").unwrap().is_empty());
}

#[test]
fn equals_tiktoken_on_tiny_shakespeare() {
    let tok = Gpt2Tokenizer::new();
    let text = llm::TINY_SHAKESPEARE;
    let want = oracle().encode_ordinary(text);
    assert_eq!(want.len(), 338_025);
    assert_eq!(tok.encode_with(text, Special::AsText).unwrap(), want);
    assert_eq!(encode_parallel(&tok, text, Special::AsText).unwrap(), want);
}

#[test]
fn decode_names_an_out_of_range_id() {
    let tok = Gpt2Tokenizer::new();
    let err = tok.decode(&[15496, 50257]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token id 50257 at position 1 is out of range for a vocabulary of 50257"
    );
    // A token that is half a UTF-8 character decodes to bytes, not to text.
    let ids = tok.encode("😀").unwrap();
    assert!(ids.len() > 1, "{ids:?}");
    let head = tok.decode_bytes(&ids[..1]).unwrap();
    assert!(head.len() < 4 && std::str::from_utf8(&head).is_err());
    let err = tok.decode(&ids[..1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the decoded text is not valid UTF-8 at byte 0"
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/gpt2");
    let encoder = std::fs::read_to_string(assets.join("encoder.json")).unwrap();
    let merges = std::fs::read_to_string(assets.join("vocab.bpe")).unwrap();
    write(dir.path(), "encoder.json", &encoder);

    let mut lines: Vec<&str> = merges.lines().collect();
    lines[3] = "Ġ t h";
    write(dir.path(), "vocab.bpe", &lines.join("\n"));
    let err = Gpt2Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "vocab.bpe, line 4: the merge \"Ġ t h\" is not two tokens separated by one space"
        ),
        "{err}"
    );

    lines[3] = "Ġ zzzzzz";
    write(dir.path(), "vocab.bpe", &lines.join("\n"));
    let err = Gpt2Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "vocab.bpe, line 4: the merge \"Ġ zzzzzz\" uses a token not in the vocabulary"
        ),
        "{err}"
    );

    write(dir.path(), "vocab.bpe", &merges);
    write(dir.path(), "encoder.json", &encoder[..1000]);
    let err = Gpt2Tokenizer::from_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("encoder.json, line 1: EOF while parsing"),
        "{err}"
    );

    let from_disk = {
        write(dir.path(), "encoder.json", &encoder);
        Gpt2Tokenizer::from_dir(dir.path()).unwrap()
    };
    assert_eq!(from_disk.encode("Hello world").unwrap(), [15496, 995]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn equals_tiktoken_on_any_string(text in any::<String>()) {
        let ours = Gpt2Tokenizer::new().encode_with(&text, Special::AsText).unwrap();
        prop_assert_eq!(ours, oracle().encode_ordinary(&text));
    }

    #[test]
    fn equals_tiktoken_on_wordy_strings(text in "([a-zA-Z']{1,12}[ \t\n]{0,3}[0-9.,!?é😀]{0,2}){0,20}") {
        let ours = Gpt2Tokenizer::new().encode_with(&text, Special::AsText).unwrap();
        prop_assert_eq!(ours, oracle().encode_ordinary(&text));
    }
}
