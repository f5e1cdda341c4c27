//! llama2.c's tokenizer against llama2.c's own outputs: the prompt encoding and the 200 greedy
//! tokens of `run stories260K.bin -z tok512.bin -t 0.0 -n 200` (llama2.c's `test_all.py`), and
//! Llama 2's `tokenizer.bin` on texts with words, punctuation, accents and an emoji that only
//! byte fallback can spell. Then round trips, the saved form, and damaged files.

mod common;
use common::llama2c;
use llm::tokenizer::{self, Llama2cTokenizer, Special, Tokenizer};
use std::sync::OnceLock;

/// The 512-token vocabulary of stories260K.
fn tok512() -> &'static Llama2cTokenizer {
    static TOK: OnceLock<Llama2cTokenizer> = OnceLock::new();
    TOK.get_or_init(|| Llama2cTokenizer::from_file(&llama2c::shipped("tok512.bin"), 512).unwrap())
}

/// Llama 2's 32,000-token vocabulary.
fn llama2() -> &'static Llama2cTokenizer {
    static TOK: OnceLock<Llama2cTokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        Llama2cTokenizer::from_file(&llama2c::shipped("tokenizer.bin"), 32_000).unwrap()
    })
}

#[test]
fn tok512_encodes_the_prompt_as_llama2c_does() {
    let tok = tok512();
    let text = "Once upon a time";
    assert_eq!(tok.encode_llama(text, true, false), [1, 403, 407, 261, 378]);
    assert_eq!(
        tok.encode_llama(text, true, true),
        [1, 403, 407, 261, 378, 2]
    );
    assert_eq!(tok.encode_llama(text, false, false), [403, 407, 261, 378]);
    // The trait's encoding has no BOS, so that prompts compose as with other tokenizers.
    assert_eq!(tok.encode(text).unwrap(), [403, 407, 261, 378]);
    assert_eq!(tok.encode_llama("", true, false), [1]);
    assert!(tok.encode("").unwrap().is_empty());
}

#[test]
fn tok512_decodes_llama2c_reference_output() {
    let tok = tok512();
    // As run.c prints them: each token decoded after the one before, the first after BOS.
    let mut printed = Vec::new();
    let mut prev = Llama2cTokenizer::BOS;
    for &id in &llama2c::GREEDY_200_IDS {
        printed.extend_from_slice(tok.decode_llama(prev, id).unwrap());
        prev = id;
    }
    assert_eq!(
        String::from_utf8(printed).unwrap(),
        llama2c::GREEDY_200_TEXT
    );
    // The trait: the start of a sequence is decoded as after BOS, and BOS itself is `<s>`.
    assert_eq!(
        tok.decode(&llama2c::GREEDY_200_IDS).unwrap(),
        llama2c::GREEDY_200_TEXT
    );
    let with_bos: Vec<u32> = [1]
        .iter()
        .chain(&llama2c::GREEDY_200_IDS)
        .copied()
        .collect();
    assert_eq!(
        tok.decode(&with_bos).unwrap(),
        format!("<s>{}", llama2c::GREEDY_200_TEXT)
    );
    // Streaming, one token at a time after the prompt [BOS], gives the same text.
    let mut streamed = Vec::new();
    let mut prev = Llama2cTokenizer::BOS;
    for &id in &llama2c::GREEDY_200_IDS {
        streamed.extend(tok.decode_next(Some(prev), id).unwrap());
        prev = id;
    }
    assert_eq!(
        String::from_utf8(streamed).unwrap(),
        llama2c::GREEDY_200_TEXT
    );
    // Newlines are byte pieces: "<0x0A>" is id 13.
    assert_eq!(tok.piece(13), Some(&b"<0x0A>"[..]));
    assert_eq!(tok.decode_llama(426, 13).unwrap(), b"\n");
}

#[test]
fn llama2_vocabulary_encodes_as_llama2c_does() {
    let tok = llama2();
    let cases: [(&str, &[u32]); 4] = [
        ("Once upon a time", &[1, 9038, 2501, 263, 931]),
        ("Hello world!", &[1, 15043, 3186, 29991]),
        (
            "Lily's mom said, \"Hi\"",
            &[
                1, 365, 2354, 29915, 29879, 16823, 1497, 29892, 376, 18567, 29908,
            ],
        ),
        // The emoji is no piece: its bytes F0 9F A4 96 fall back to ids byte + 3.
        (
            "naïve café 🤖",
            &[1, 1055, 30085, 345, 274, 28059, 29871, 243, 162, 167, 153],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(tok.encode_llama(text, true, false), want, "{text:?}");
        assert_eq!(tok.encode(text).unwrap(), want[1..], "{text:?}");
        assert_eq!(tok.decode(&want[1..]).unwrap(), text);
        assert_eq!(tok.decode(want).unwrap(), format!("<s>{text}"));
    }
    assert_eq!(tok.piece(259), Some(&b"  "[..]));
    assert_eq!(tok.piece(29871), Some(&b" "[..]));
}

#[test]
fn decode_inverts_encode_for_both_vocabularies() {
    let texts = [
        "",
        " ",
        "  two leading spaces and two trailing  ",
        "\n",
        "line one\nline two\n\n",
        "naïve café 🤖 — 東京 ß",
        "\t tab\r\n and control \u{1} \u{0} bytes",
        "<s>Once upon a time</s>",
        "<unk> and <0x41> are text here",
        llama2c::GREEDY_200_TEXT,
    ];
    for tok in [tok512(), llama2()] {
        for text in texts {
            let ids = tok.encode(text).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), text, "{text:?}");
            let plain = tok.encode_with(text, Special::AsText).unwrap();
            assert_eq!(plain, tok.encode_llama(text, false, false));
            assert_eq!(tok.decode(&plain).unwrap(), text, "{text:?}");
            // Token by token, as streaming does, gives the same bytes.
            let mut streamed = Vec::new();
            let mut prev = None;
            for &id in &ids {
                streamed.extend(tok.decode_next(prev, id).unwrap());
                prev = Some(id);
            }
            assert_eq!(streamed, text.as_bytes());
        }
        let ids = tok.encode("a <s> b").unwrap();
        assert!(ids.contains(&Llama2cTokenizer::BOS));
        assert!(tok.encode_with("a <s> b", Special::Reject).is_err());
    }
}

#[test]
fn special_tokens_and_the_end_of_text() {
    let tok = tok512();
    let special: Vec<(&str, u32)> = tok
        .special_tokens()
        .iter()
        .map(|(s, id)| (s.as_str(), *id))
        .collect();
    assert_eq!(special, [("<unk>", 0), ("<s>", 1), ("</s>", 2)]);
    // llama2.c's texts are separated by BOS: run.c starts from it and stops at it.
    assert_eq!(tok.eot_token(), Some(Llama2cTokenizer::BOS));
    assert_eq!(llm::tasks::end_token(tok), Some(1));
    assert_eq!(tok.kind(), "llama2c");
    assert_eq!((tok.vocab_size(), llama2().vocab_size()), (512, 32_000));
    assert!(!tok.cuts_at_spaces());
    assert_eq!(tok.decode_llama(0, 1).unwrap(), b"\n<s>\n");
    let err = tok.decode(&[5, 512]).unwrap_err().to_string();
    assert_eq!(
        err,
        "token id 512 at position 1 is out of range for a vocabulary of 512"
    );
    assert!(tok.decode_llama(1, 600).is_err());
}

#[test]
fn the_saved_form_round_trips() {
    let texts = ["Once upon a time", "naïve café 🤖", " <s>x</s>\n", ""];
    let dir = tempfile::tempdir().unwrap();
    for (i, tok) in [tok512(), llama2()].into_iter().enumerate() {
        let saved = tok.to_json();
        let back = tokenizer::from_json(&saved).unwrap();
        assert_eq!(back.kind(), "llama2c");
        assert_eq!(back.vocab_size(), tok.vocab_size());
        assert_eq!(back.special_tokens(), tok.special_tokens());
        assert_eq!(back.eot_token(), tok.eot_token());
        assert_eq!(back.to_json(), saved);
        let path = dir.path().join(format!("{i}.json"));
        tok.save(&path).unwrap();
        let loaded = tokenizer::load(&path).unwrap();
        for text in texts {
            let ids = tok.encode(text).unwrap();
            assert_eq!(back.encode(text).unwrap(), ids);
            assert_eq!(loaded.encode(text).unwrap(), ids);
            assert_eq!(loaded.decode(&ids).unwrap(), text);
        }
        let all: Vec<u32> = (0..tok.vocab_size() as u32).collect();
        assert_eq!(
            loaded.decode_bytes(&all).unwrap(),
            tok.decode_bytes(&all).unwrap()
        );
    }
    let saved = tok512().to_json();
    assert_eq!(saved["max_token_length"], 7);
    assert_eq!(saved["pieces"][1], "\n<s>\n");
    assert_eq!(saved["pieces"][259], " t");
    assert_eq!(saved["scores"][260], -1.0);
}

#[test]
fn reading_to_the_end_finds_the_vocabulary_size() {
    for (file, n) in [("tok512.bin", 512), ("tokenizer.bin", 32_000)] {
        let tok = Llama2cTokenizer::from_file_to_end(&llama2c::shipped(file)).unwrap();
        assert_eq!(tok.vocab_size(), n);
        let text = "Once upon a time, 🤖.";
        let sized = Llama2cTokenizer::from_file(&llama2c::shipped(file), n).unwrap();
        assert_eq!(tok.encode(text).unwrap(), sized.encode(text).unwrap());
    }
    assert_eq!(tok512().max_token_length(), 7);
    assert_eq!(llama2().max_token_length(), 27);
}

/// The byte offset of each token of a `tokenizer.bin`.
fn token_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 4;
    while at < bytes.len() {
        offsets.push(at);
        let len = i32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        at += 8 + len as usize;
    }
    offsets
}

fn error_of(bytes: &[u8], vocab_size: Option<usize>) -> String {
    match Llama2cTokenizer::from_bytes(bytes, vocab_size) {
        Ok(tok) => panic!("read a vocabulary of {} tokens", tok.vocab_size()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_cut_file_is_an_error_naming_the_file() {
    let bytes = std::fs::read(llama2c::shipped("tok512.bin")).unwrap();
    let offsets = token_offsets(&bytes);
    assert_eq!(offsets.len(), 512);
    // Cut anywhere: an error, never a panic. Read to the end, a file cut between two tokens
    // is a smaller vocabulary (the file cannot tell), which must still have 259 tokens.
    for len in 0..bytes.len() {
        assert!(Llama2cTokenizer::from_bytes(&bytes[..len], Some(512)).is_err());
        if let Ok(tok) = Llama2cTokenizer::from_bytes(&bytes[..len], None) {
            assert!(offsets.contains(&len) && (259..512).contains(&tok.vocab_size()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.bin");
    let cases = [
        (
            2,
            "the file is 2 bytes, too short for the 4-byte max_token_length",
        ),
        (
            offsets[300] + 5,
            "the file ends inside token 300 (which starts at byte 4051), too short for a \
             vocabulary of 512",
        ),
        (
            offsets[300],
            "the file holds 300 tokens, fewer than the 512 expected",
        ),
    ];
    for (len, want) in cases {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let err = Llama2cTokenizer::from_file(&path, 512)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&*path.to_string_lossy()), "{err}");
        assert!(err.contains(want), "{err} lacks {want}");
    }
    let err = error_of(&bytes[..offsets[300] + 5], None);
    assert!(
        err.contains("the file ends inside token 300, which starts at byte 4051"),
        "{err}"
    );
    // A wrong vocabulary size either way.
    assert!(error_of(&bytes, Some(511)).contains("bytes follow the last of the 511 tokens"));
    assert!(error_of(&bytes, Some(513)).contains("holds 512 tokens, fewer than the 513"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(error_of(&longer, Some(512)).contains("1 bytes follow the last of the 512 tokens"));
    assert!(error_of(&longer, None).contains("the file ends inside token 512"));
    let missing = tempfile::tempdir().unwrap().path().join("none.bin");
    assert!(Llama2cTokenizer::from_file(&missing, 512).is_err());
}

#[test]
fn a_corrupted_file_is_an_error_that_says_what_is_wrong() {
    let bytes = std::fs::read(llama2c::shipped("tok512.bin")).unwrap();
    let offsets = token_offsets(&bytes);
    let space = offsets[410];
    assert_eq!(&bytes[space + 4..space + 9], [1, 0, 0, 0, b' ']);
    let corrupt = |at: usize, new: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + new.len()].copy_from_slice(new);
        b
    };
    let nan = f32::NAN.to_le_bytes();
    let cases = [
        (
            corrupt(0, &(-1i32).to_le_bytes()),
            "max_token_length is -1, below 0",
        ),
        (
            corrupt(0, &3i32.to_le_bytes()),
            "token 0 (at byte 4) has a length of 5 bytes, outside 0..=3",
        ),
        (
            corrupt(offsets[7] + 4, &(-6i32).to_le_bytes()),
            "token 7 (at byte 100) has a length of -6 bytes",
        ),
        (
            corrupt(offsets[7] + 4, &i32::MAX.to_le_bytes()),
            "has a length of 2147483647 bytes",
        ),
        (
            corrupt(offsets[300], &nan),
            "the score of token 300 is NaN, not a finite number",
        ),
        (
            corrupt(offsets[68] + 8, b"<0x42>"),
            "token 68 is \"<0x42>\", but byte fallback needs it to be \"<0x41>\"",
        ),
        (
            corrupt(space + 8, b"t"),
            "tokens 410 and 413 are both \"t\"",
        ),
        (corrupt(space + 8, b"\x07"), "no token is the piece \" \""),
    ];
    for (file, want) in cases {
        for size in [Some(512), None] {
            let err = error_of(&file, size);
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }
    let err = error_of(&bytes[..offsets[200]], None);
    assert!(err.contains("needs from 259 tokens"), "{err}");
}

/// Which pieces are symbols of run.c's encoding: a character's piece, a byte piece, or a piece
/// that merges make (two symbols concatenate to it, and it scores above -1e10). The second
/// list says which pieces merges make.
fn symbols_and_merged(tok: &Llama2cTokenizer) -> (Vec<bool>, Vec<bool>) {
    let n = tok.vocab_size() as u32;
    let mut by_length: Vec<u32> = (0..n).collect();
    by_length.sort_by_key(|&id| tok.piece(id).unwrap().len());
    // The byte pieces, ids 3..259, are symbols from the start.
    let mut symbol: Vec<bool> = (0..n).map(|id| (3..259).contains(&id)).collect();
    let mut merged = vec![false; n as usize];
    for id in by_length {
        let piece = tok.piece(id).unwrap();
        let splits = (1..piece.len()).any(|cut| {
            let is_symbol = |p: &[u8]| tok.id_of(p).is_some_and(|i| symbol[i as usize]);
            is_symbol(&piece[..cut]) && is_symbol(&piece[cut..])
        });
        merged[id as usize] = splits && tok.score(id).unwrap() > -1e10;
        let character = std::str::from_utf8(piece).is_ok_and(|s| s.chars().count() == 1);
        symbol[id as usize] |= character || merged[id as usize];
    }
    (symbol, merged)
}

/// The round trip holds because merges never make a special or a byte piece (whose decoded
/// text differs from the piece): checked for both shipped vocabularies, in which every piece
/// after the byte pieces is a character or made by merges.
#[test]
fn no_merge_makes_a_special_or_byte_piece() {
    for tok in [tok512(), llama2()] {
        let (symbol, merged) = symbols_and_merged(tok);
        assert!(merged[..259].iter().all(|m| !m));
        assert!(symbol[259..].iter().all(|&s| s));
    }
}

#[test]
fn a_long_text_round_trips() {
    // About a megabyte through Llama 2's vocabulary: run.c's rescan would take hours, the heap
    // a fraction of a second.
    let tok = llama2();
    let text = llm::TINY_SHAKESPEARE;
    let ids = tok.encode(text).unwrap();
    assert!(ids.len() < text.len() / 3, "{} ids", ids.len());
    assert_eq!(tok.decode(&ids).unwrap(), text);
}

#[test]
fn with_added_tokens_it_still_round_trips_and_streams() {
    let base = Box::new(tok512().clone());
    let (tok, added) = tokenizer::added::with_tokens(base, &["<|user|>"]).unwrap();
    assert_eq!((added, tok.vocab_size()), (1, 513));
    let text = "<|user|> Hi<s>there<|user|>x\n";
    let ids = tok.encode(text).unwrap();
    assert_eq!(ids[0], 512);
    assert_eq!(tok.decode(&ids).unwrap(), text);
    let mut streamed = Vec::new();
    let mut prev = None;
    for &id in &ids {
        streamed.extend(tok.decode_next(prev, id).unwrap());
        prev = Some(id);
    }
    assert_eq!(streamed, text.as_bytes());
}

#[test]
fn training_text_puts_bos_before_each_story() {
    let text = "One day.\n<|endoftext|>\n  Tim ran.  \n<|endoftext|>\n\n<|endoftext|>";
    let ids = tokenizer::encode_documents(tok512(), text, Special::Allow).unwrap();
    let mut want = vec![1];
    want.extend(tok512().encode("One day.").unwrap());
    want.push(1);
    want.extend(tok512().encode("Tim ran.").unwrap());
    assert_eq!(ids, want);
    // A tokenizer without a start token encodes the text whole, separators included.
    let gpt2 = tokenizer::Gpt2Tokenizer::new();
    assert_eq!(
        tokenizer::encode_documents(&gpt2, text, Special::Allow).unwrap(),
        gpt2.encode(text).unwrap()
    );
}
