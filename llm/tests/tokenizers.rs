//! The same matrix over every tokenizer: round trips, save and load, and the `--tokenizer`
//! resolution.

use llm::tokenizer::{
    self, encode_parallel, BpeTokenizer, CharTokenizer, Gpt2Tokenizer, Llama2cTokenizer, Pattern,
    Special, Tokenizer, ENDOFTEXT,
};
use proptest::prelude::*;
use std::sync::OnceLock;

/// BPE tokenizers with each split pattern, trained once on the start of Tiny Shakespeare.
fn trained() -> &'static [BpeTokenizer] {
    static TRAINED: OnceLock<Vec<BpeTokenizer>> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let text = &llm::TINY_SHAKESPEARE[..20_000];
        [Pattern::None, Pattern::Gpt2, Pattern::Gpt4]
            .into_iter()
            .map(|p| BpeTokenizer::train(text, 400, p, &[ENDOFTEXT.to_string()]).unwrap())
            .collect()
    })
}

/// llama2.c's 512-token vocabulary, shipped in `data/llama2c`.
fn llama2c() -> &'static Llama2cTokenizer {
    static TOK: OnceLock<Llama2cTokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/llama2c/tok512.bin");
        Llama2cTokenizer::from_file(&path, 512).unwrap()
    })
}

/// Every kind of tokenizer; the character one covers the characters of `text`.
fn all_for(text: &str) -> Vec<Box<dyn Tokenizer>> {
    let mut all: Vec<Box<dyn Tokenizer>> = vec![
        Box::new(CharTokenizer::from_corpus(&format!("x{text}")).unwrap()),
        Box::new(Gpt2Tokenizer::new()),
        Box::new(llama2c().clone()),
    ];
    all.extend(
        trained()
            .iter()
            .map(|t| Box::new(t.clone()) as Box<dyn Tokenizer>),
    );
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decode_inverts_encode_for_every_tokenizer(text in any::<String>(), eot in any::<bool>()) {
        let text = if eot { format!("{text}{ENDOFTEXT}{text}") } else { text };
        for tok in all_for(&text) {
            let ids = tok.encode(&text).unwrap();
            prop_assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
            prop_assert_eq!(&tok.decode(&ids).unwrap(), &text, "kind {}", tok.kind());
            let plain = tok.encode_with(&text, Special::AsText).unwrap();
            prop_assert_eq!(&tok.decode(&plain).unwrap(), &text, "kind {}", tok.kind());
            // One token at a time, as streaming output decodes, gives the same bytes.
            let mut streamed = Vec::new();
            for (i, &id) in ids.iter().enumerate() {
                streamed.extend(tok.decode_next(i.checked_sub(1).map(|j| ids[j]), id).unwrap());
            }
            prop_assert_eq!(streamed, text.as_bytes(), "kind {}", tok.kind());
        }
    }
}

#[test]
fn saved_tokenizers_load_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let sample = "First Citizen:\nBefore we proceed any further, hear me speak.<|endoftext|>";
    for (i, tok) in all_for(sample).iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        tok.save(&path).unwrap();
        let loaded = tokenizer::load(&path).unwrap();
        assert_eq!(loaded.kind(), tok.kind());
        assert_eq!(loaded.vocab_size(), tok.vocab_size());
        assert_eq!(loaded.special_tokens(), tok.special_tokens());
        assert_eq!(loaded.encode(sample).unwrap(), tok.encode(sample).unwrap());
        assert_eq!(loaded.to_json(), tok.to_json());
    }
    let gpt2 = Gpt2Tokenizer::new().to_json();
    assert_eq!(gpt2, serde_json::json!({"version": 1, "kind": "gpt2"}));
}

#[test]
fn saved_bpe_is_readable() {
    let json = trained()[1].to_json();
    assert_eq!(json["pattern"], "gpt2");
    assert_eq!(json["special_tokens"], serde_json::json!([ENDOFTEXT]));
    let merges = json["merges"].as_array().unwrap();
    assert_eq!(merges.len(), 400 - 257);
    // The most frequent byte pair inside GPT-2 chunks of that text is " t" (404 times, then
    // "th" 402), written as `vocab.bpe` writes it.
    assert_eq!(merges[0], "Ġ t");
}

#[test]
fn bad_saved_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("{\"kind\": \"char\", \"chars\": \"ab\"}", "needs \"version\": 1, found none"),
        ("{\"version\": 1, \"kind\": \"word\"}", "unknown tokenizer kind \"word\""),
        (
            "{\"version\": 1, \"kind\": \"bpe\", \"pattern\": \"gpt2\", \"merges\": [\"a b\", \"ab cd\"]}",
            "merge 1 (\"ab cd\") uses \"cd\", which no earlier merge makes",
        ),
        ("{\"version\": 1,\n \"kind\": }", "line 2: expected value"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, text).unwrap();
        let err = tokenizer::load(&path).err().unwrap().to_string();
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        assert!(err.contains(want), "{err} lacks {want}");
    }
}

#[test]
fn resolve_names_char_gpt2_and_paths() {
    let corpus = || Ok("abc".to_string());
    assert_eq!(tokenizer::resolve("char", corpus).unwrap().vocab_size(), 3);
    assert_eq!(
        tokenizer::resolve("gpt2", corpus).unwrap().vocab_size(),
        50257
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    trained()[2].save(&path).unwrap();
    let spec = path.to_str().unwrap();
    assert_eq!(tokenizer::resolve(spec, corpus).unwrap().kind(), "bpe");
    let err = tokenizer::resolve("nope.json", corpus).err().unwrap();
    assert_eq!(
        err.to_string(),
        "--tokenizer \"nope.json\" is not char, gpt2, llama2c:FILE, a tokenizer file or a \
         directory"
    );
    let llama2c = tokenizer::resolve("llama2c:../data/llama2c/tok512.bin", corpus).unwrap();
    assert_eq!((llama2c.kind(), llama2c.vocab_size()), ("llama2c", 512));
    assert!(tokenizer::resolve("llama2c:nope.bin", corpus).is_err());
}

#[test]
fn parallel_encoding_equals_sequential() {
    let text = llm::TINY_SHAKESPEARE;
    for tok in all_for("") {
        if tok.kind() == "char" {
            let tok = CharTokenizer::from_corpus(text).unwrap();
            assert_eq!(
                encode_parallel(&tok, text, Special::Allow).unwrap(),
                tok.encode(text).unwrap()
            );
            continue;
        }
        let want = tok.encode(&text[..200_000]).unwrap();
        assert_eq!(
            encode_parallel(&*tok, &text[..200_000], Special::Allow).unwrap(),
            want
        );
    }
}
