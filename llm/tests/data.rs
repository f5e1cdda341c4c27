//! The data pipeline end to end: prepare, then read back through the dataset.

use llm::data::{self, prepare, PrepareOptions, Split, TokenDataset, TokenDtype};
use llm::tokenizer::Special;
use std::path::{Path, PathBuf};
use tensor::Rng;

fn options(inputs: Vec<PathBuf>, tokenizer: &str, out: &Path) -> PrepareOptions {
    PrepareOptions {
        inputs,
        tokenizer: tokenizer.to_string(),
        out: out.to_path_buf(),
        val_fraction: 0.1,
        special: Special::Allow,
    }
}

fn shakespeare(dir: &Path) -> PathBuf {
    let path = dir.join("input.txt");
    std::fs::write(&path, llm::TINY_SHAKESPEARE).unwrap();
    path
}

/// nanoGPT's `shakespeare_char` and `shakespeare` preparations print these counts.
#[test]
fn tiny_shakespeare_gives_nanogpt_counts() {
    let dir = tempfile::tempdir().unwrap();
    let input = shakespeare(dir.path());
    for (spec, vocab, train, val) in [
        ("char", 65, 1_003_854, 111_540),
        ("gpt2", 50257, 301_966, 36_059),
    ] {
        let out = dir.path().join(spec);
        let meta = prepare(&options(vec![input.clone()], spec, &out)).unwrap();
        assert_eq!(
            (meta.vocab_size, meta.train_tokens, meta.val_tokens),
            (vocab, train, val)
        );
        assert_eq!(meta.dtype, TokenDtype::U16);
        assert_eq!(data::Meta::read(&out).unwrap(), meta);
        assert_eq!(
            std::fs::metadata(out.join("train.bin")).unwrap().len(),
            2 * train
        );

        let tok = meta.tokenizer().unwrap();
        let train_data = TokenDataset::open(&out).unwrap();
        let val_data = TokenDataset::open_split(&out, Split::Val).unwrap();
        assert_eq!(
            (train_data.len(), val_data.len()),
            (train as usize, val as usize)
        );
        let head = tok.decode(&train_data.slice(0, 30)).unwrap();
        assert!(head.starts_with("First Citizen:\nBefore"), "{head:?}");
        let all = [
            train_data.slice(0, train_data.len()),
            val_data.slice(0, val_data.len()),
        ];
        assert_eq!(tok.decode(&all.concat()).unwrap(), llm::TINY_SHAKESPEARE);

        let (x, y) = train_data.sample_batch(3, 16, &mut Rng::new(1)).unwrap();
        assert_eq!((x.shape(), y.shape()), (&[3, 16][..], &[3, 16][..]));
        assert!(x.to_vec::<u32>().iter().all(|&id| (id as usize) < vocab));
    }
}

#[test]
fn several_inputs_and_a_bin_path() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    std::fs::write(&a, "hello world. ").unwrap();
    std::fs::write(&b, "goodbye world.<|endoftext|>").unwrap();
    let out = dir.path().join("out");
    let mut opts = options(vec![a, b], "gpt2", &out);
    opts.val_fraction = 0.0;
    let meta = prepare(&opts).unwrap();
    assert_eq!(meta.val_tokens, 0);
    let train = TokenDataset::open(out.join("train.bin")).unwrap();
    let ids = train.slice(0, train.len());
    let tok = meta.tokenizer().unwrap();
    assert_eq!(ids.last(), Some(&50256));
    assert_eq!(
        tok.decode(&ids).unwrap(),
        "hello world. goodbye world.<|endoftext|>"
    );
}

#[test]
fn bad_inputs_are_one_sentence_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let err = prepare(&options(vec![empty.clone()], "gpt2", &out)).unwrap_err();
    assert_eq!(err.to_string(), format!("{} is empty", empty.display()));

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"caf\xe9 au lait").unwrap();
    let err = prepare(&options(vec![bad.clone()], "char", &out)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} is not valid UTF-8 at byte 3", bad.display())
    );

    let mut opts = options(vec![bad], "gpt2", &out);
    opts.val_fraction = 1.0;
    assert_eq!(
        prepare(&opts).unwrap_err().to_string(),
        "--val-fraction 1 is not in [0, 1)"
    );

    let special = dir.path().join("special.txt");
    std::fs::write(&special, "one two<|endoftext|>").unwrap();
    let mut opts = options(vec![special.clone()], "gpt2", &out);
    opts.special = Special::Reject;
    let err = prepare(&opts).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: the text contains", special.display())),
        "{err}"
    );
    assert!(err.contains("at byte 7"), "{err}");
    assert!(!out.join("meta.json").exists());
}

#[test]
fn bin_files_are_checked_against_their_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("odd.bin");
    std::fs::write(&odd, [1u8, 0, 2]).unwrap();
    let err = TokenDataset::open(&odd).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{} has 3 bytes, which is not a whole number of u16 ids",
            odd.display()
        )
    );
    // A nanoGPT file: little-endian u16 with no meta.json beside it.
    let nanogpt = dir.path().join("train.bin");
    std::fs::write(&nanogpt, [1u8, 0, 2, 1, 255, 255]).unwrap();
    assert_eq!(
        TokenDataset::open(&nanogpt).unwrap().slice(0, 3),
        [1, 258, 65_535]
    );
    assert_eq!(TokenDataset::open(dir.path()).unwrap().len(), 3);
    let wide = dir.path().join("wide.bin");
    let ids: Vec<u8> = [70_000u32, 1, 65_536]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&wide, &ids).unwrap();
    let data = TokenDataset::open_bin(&wide, TokenDtype::U32).unwrap();
    assert_eq!(data.slice(0, 3), [70_000, 1, 65_536]);
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, []).unwrap();
    assert!(TokenDataset::open(&empty)
        .err()
        .unwrap()
        .to_string()
        .ends_with("holds no tokens"));
    assert_eq!(TokenDtype::for_vocab(65_536), TokenDtype::U16);
    assert_eq!(TokenDtype::for_vocab(65_537), TokenDtype::U32);
}

/// The fine-tuning files of a data directory laid out as `data/finetune/...`, named by the
/// `LLM_DATA_DIR` environment variable; skipped when it is not set.
#[test]
fn finetune_files_load() {
    let Some(dir) = std::env::var_os("LLM_DATA_DIR").map(PathBuf::from) else {
        eprintln!("skipped: set LLM_DATA_DIR to a data directory with finetune/ to run this");
        return;
    };
    let finetune = dir.join("finetune");
    let sft = data::read_instructions(&finetune.join("instruction-data.json")).unwrap();
    assert_eq!(sft.len(), 1100);
    let with_response =
        data::read_instructions(&finetune.join("instruction-data-with-response.json")).unwrap();
    assert_eq!(with_response.len(), 110);
    let prefs =
        data::read_preferences(&finetune.join("instruction-data-with-preference.json")).unwrap();
    assert_eq!(prefs.len(), 1100);
    assert_eq!(
        prefs.iter().filter(|p| p.chosen != p.rejected).count(),
        1094
    );
    let sms = data::read_labelled(&finetune.join("SMSSpamCollection.tsv")).unwrap();
    assert_eq!(sms.len(), 5574);
    assert_eq!(sms.iter().filter(|s| s.label == "spam").count(), 747);
    let hh = dir.join("preference/hh-rlhf-helpful-base-test.jsonl");
    if hh.is_file() {
        let hh = data::read_preferences(&hh).unwrap();
        assert_eq!(hh.len(), 2354);
        assert!(hh.iter().all(|p| p.user.content.ends_with("Assistant:")));
    }
}
