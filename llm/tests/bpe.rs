//! The trainable byte-level BPE: a hand-checked example and an exact reproduction of a
//! reference trainer's vocabulary and merges.

use llm::tokenizer::bytes::{bytes_to_unicode, unicode_to_bytes};
use llm::tokenizer::{BpeTokenizer, Pattern, Special, Tokenizer, ENDOFTEXT};
use std::collections::{BTreeSet, HashMap};

#[test]
fn aaabdaaabac_with_three_merges() {
    let tok = BpeTokenizer::train("aaabdaaabac", 256 + 3, Pattern::None, &[]).unwrap();
    // (a,a) occurs 4 times; then (aa,a) and (a,b) both occur twice, and the tie goes to the
    // pair with the greater first token bytes ("aa" > "a"); then (aaa,b).
    assert_eq!(tok.merges(), [(97, 97), (256, 97), (257, 98)]);
    assert_eq!(tok.token_bytes(258), Some(&b"aaab"[..]));
    let ids = tok.encode("aaabdaaabac").unwrap();
    assert_eq!(ids, [258, 100, 258, 97, 99]);
    assert_eq!(tok.decode(&ids).unwrap(), "aaabdaaabac");
}

/// The reference: byte-level BPE on `corpus.en` with GPT-2 pre-tokenization, vocabulary size
/// 500 including `<|endoftext|>` (243 merges). Its files write tokens in the byte-to-unicode
/// alphabet; its ids put the special token at 0 and the bytes at 1..=256.
#[test]
fn reproduces_the_reference_trainer_exactly() {
    let corpus = include_str!("data/corpus.en");
    let tok = BpeTokenizer::train(corpus, 500, Pattern::Gpt2, &[ENDOFTEXT.to_string()]).unwrap();
    let want_merges: Vec<&str> = include_str!("data/train-bpe-reference-merges.txt")
        .lines()
        .collect();
    let got_merges: Vec<String> = tok
        .merges()
        .iter()
        .map(|&(a, b)| {
            let s = |id| bytes_to_unicode(tok.token_bytes(id).unwrap());
            format!("{} {}", s(a), s(b))
        })
        .collect();
    assert_eq!(got_merges, want_merges);

    let reference: HashMap<String, u32> =
        serde_json::from_str(include_str!("data/train-bpe-reference-vocab.json")).unwrap();
    let want: BTreeSet<Vec<u8>> = reference
        .keys()
        .map(|k| match k.as_str() {
            ENDOFTEXT => k.as_bytes().to_vec(),
            k => unicode_to_bytes(k).unwrap(),
        })
        .collect();
    let got: BTreeSet<Vec<u8>> = (0..tok.vocab_size() as u32)
        .map(|id| match tok.token_bytes(id) {
            Some(bytes) => bytes.to_vec(),
            None => tok.decode_bytes(&[id]).unwrap(),
        })
        .collect();
    assert_eq!(tok.vocab_size(), 500);
    assert_eq!(got, want);
    // The same tokens in the same order: merge k is reference id 257 + k and ours 256 + k.
    for k in 0..243u32 {
        let key = bytes_to_unicode(tok.token_bytes(256 + k).unwrap());
        assert_eq!(reference[&key], 257 + k, "merge {k}");
    }
    assert_eq!(tok.eot_token(), Some(499));
    assert_eq!(reference[ENDOFTEXT], 0);
}

#[test]
fn special_tokens_are_allowed_or_rejected_as_the_caller_chooses() {
    let text = "low lower lowest<|endoftext|>new newer newest";
    let tok = BpeTokenizer::train(text, 270, Pattern::Gpt4, &[ENDOFTEXT.to_string()]).unwrap();
    let eot = tok.eot_token().unwrap();
    assert_eq!(eot, 269);
    let ids = tok.encode_with(text, Special::Allow).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == eot).count(), 1);
    let err = tok.encode_with(text, Special::Reject).unwrap_err();
    assert!(
        err.to_string().contains("\"<|endoftext|>\" at byte 16"),
        "{err}"
    );
    let plain = tok.encode_with(text, Special::AsText).unwrap();
    assert!(!plain.contains(&eot));
    assert_eq!(tok.decode(&plain).unwrap(), text);
    // No merge crosses the special token: its neighbours are cut apart while training.
    assert!((256..269).all(|id| !tok.decode(&[id]).unwrap().contains('<')));
}

#[test]
fn a_merge_given_twice_is_refused() {
    let tok = BpeTokenizer::train("aaabdaaabac", 256 + 3, Pattern::None, &[]).unwrap();
    let mut saved = tok.to_json();
    BpeTokenizer::from_json(&saved).unwrap();
    let merges = saved["merges"].as_array_mut().unwrap();
    let first = merges[0].clone();
    merges.push(first);
    let err = BpeTokenizer::from_json(&saved).unwrap_err().to_string();
    assert!(err.contains("merge 3 (97, 97) repeats merge 0"), "{err}");
    let err = BpeTokenizer::from_merges(vec![(97, 97), (98, 98), (97, 97)], Pattern::None, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("merge 2 (97, 97) repeats merge 0"), "{err}");
}
