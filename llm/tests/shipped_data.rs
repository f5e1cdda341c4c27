//! The datasets under `data/` are there, whole, and read as their documentation says.

use llm::data::labelled::{labels_of, read_labelled};
use llm::tokenizer::{Llama2cTokenizer, Tokenizer};
use std::path::{Path, PathBuf};

fn shipped(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(path)
}

#[test]
fn the_spam_collection_and_sst2_read_with_their_counts() {
    let spam = shipped("finetune/SMSSpamCollection.tsv");
    assert_eq!(std::fs::metadata(&spam).unwrap().len(), 477_907);
    let sms = read_labelled(&spam).unwrap();
    assert_eq!(sms.len(), 5574);
    assert_eq!(sms.iter().filter(|s| s.label == "spam").count(), 747);
    assert_eq!(labels_of(&sms, &spam).unwrap(), ["ham", "spam"]);
    for (file, rows, positive) in [
        ("train", 60_614, 33_828),
        ("dev", 6_735, 3_741),
        ("test", 872, 444),
    ] {
        let path = shipped(&format!("sentiment/sst2/{file}.tsv"));
        let sst = read_labelled(&path).unwrap();
        assert_eq!(sst.len(), rows, "{file}");
        assert_eq!(
            sst.iter().filter(|s| s.label == "1").count(),
            positive,
            "{file}"
        );
    }
}

#[test]
fn the_tinystories_sample_is_whole() {
    let text =
        std::fs::read_to_string(shipped("tinystories/TinyStories-train-first2MiB.txt")).unwrap();
    assert_eq!(text.len(), 2 << 20);
    assert_eq!(text.matches("<|endoftext|>").count(), 2316);
    let valid =
        std::fs::read_to_string(shipped("tinystories/tinystories_valid_sample.txt")).unwrap();
    assert_eq!(valid.len(), 794_375);
    assert!(valid.starts_with("Spot. Spot saw the shiny car"));
}

#[test]
fn the_preference_data_pairs_the_instruction_data_record_by_record() {
    let path = shipped("finetune/instruction-data-with-preference.json");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 386_968);
    let pairs = llm::data::read_preferences(&path).unwrap();
    let instructions =
        llm::data::read_instructions(&shipped("finetune/instruction-data.json")).unwrap();
    assert_eq!((pairs.len(), instructions.len()), (1100, 1100));
    assert_eq!(
        pairs.iter().filter(|p| p.chosen != p.rejected).count(),
        1094
    );
    // In the same order, so that `llm dpo` and `llm sft` split both files alike for a seed.
    for (p, i) in pairs.iter().zip(&instructions) {
        assert_eq!((&p.user.content, &p.user.input), (&i.instruction, &i.input));
    }
}

#[test]
fn the_hh_rlhf_pairs_read_with_their_prompts() {
    let path = shipped("preference/hh-rlhf-helpful-base-test.jsonl");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3_730_987);
    let pairs = llm::data::read_preferences(&path).unwrap();
    assert_eq!(pairs.len(), 2354);
    assert!(pairs
        .iter()
        .all(|p| p.user.content.starts_with("\n\nHuman: ")
            && p.user.content.ends_with("\n\nAssistant:")));
}

#[test]
fn the_llama2c_files_are_whole() {
    for (file, bytes) in [
        ("llama2c/stories260K.bin", 1_056_540),
        ("llama2c/tok512.bin", 6_227),
        ("llama2c/tokenizer.bin", 433_869),
    ] {
        assert_eq!(
            std::fs::metadata(shipped(file)).unwrap().len(),
            bytes,
            "{file}"
        );
    }
    // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len.
    let model = std::fs::read(shipped("llama2c/stories260K.bin")).unwrap();
    let header: Vec<i32> = model[..28]
        .chunks(4)
        .map(|w| i32::from_le_bytes(w.try_into().unwrap()))
        .collect();
    assert_eq!(header, [64, 172, 5, 8, 4, 512, 512]);
    for (file, tokens) in [
        ("llama2c/tok512.bin", 512),
        ("llama2c/tokenizer.bin", 32_000),
    ] {
        let tok = Llama2cTokenizer::from_file_to_end(&shipped(file)).unwrap();
        assert_eq!(tok.vocab_size(), tokens, "{file}");
    }
}
