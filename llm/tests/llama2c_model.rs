//! llama2.c's stories260K runs here as in llama2.c: greedy generation from BOS gives the
//! reference's 200 tokens, and a file written here reads back bit for bit.

mod common;
use common::llama2c as llama2c_files;
use common::{llm as run_llm, stdout as ok};
use llm::generate::{generate, Generation, Sampling};
use llm::model::config::Architecture;
use llm::model::llama2c;
use nn::Module;

/// llama2.c's 260K-parameter TinyStories model, shipped in `data/llama2c`.
fn stories260k() -> std::path::PathBuf {
    llama2c_files::shipped("stories260K.bin")
}

#[test]
fn stories260k_greedy_matches_llama2c() {
    let (model, cfg) = llama2c::read(&stories260k()).unwrap();
    assert_eq!(cfg.model, Architecture::Llama);
    assert_eq!(
        (
            cfg.n_embd,
            cfg.hidden_dim,
            cfg.n_layer,
            cfg.n_head,
            cfg.kv_heads()
        ),
        (64, 172, 5, 8, 4)
    );
    assert_eq!(
        (cfg.vocab_size, cfg.block_size, cfg.untied_head),
        (512, 512, false)
    );
    let g = Generation {
        max_new_tokens: 200,
        sampling: Sampling::GREEDY,
        stop_token: Some(1),
        seed: 0,
        vocab_limit: None,
    };
    let ids = generate(&model, &[1], &g, |_| {});
    assert_eq!(ids, llama2c_files::GREEDY_200_IDS);
}

/// Every parameter's values, by name.
fn weights(model: &llm::model::Model) -> Vec<(String, Vec<f32>)> {
    model
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value().contiguous().to_vec::<f32>()))
        .collect()
}

#[test]
fn a_written_file_reads_back_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, cfg) = llama2c::read(&stories260k()).unwrap();
    let path = tmp.path().join("copy.bin");
    llama2c::write(&model, &cfg, &path).unwrap();
    // The same bytes as llama2.c's own file up to the rotary tables at its end (512 positions
    // of 4 cosines and 4 sines, which run.c does not read), and tables within rounding.
    let (ours, theirs) = (
        std::fs::read(&path).unwrap(),
        std::fs::read(stories260k()).unwrap(),
    );
    assert_eq!(ours.len(), theirs.len());
    let tables = ours.len() - 4 * 2 * 512 * 4;
    assert!(
        ours[..tables] == theirs[..tables],
        "the header and weights differ"
    );
    let floats = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    for (a, b) in floats(&ours[tables..])
        .iter()
        .zip(floats(&theirs[tables..]))
    {
        assert!((a - b).abs() < 1e-5, "rotary table {a} vs {b}");
    }
    // An untied head (a negative vocabulary size in the header) survives the trip too.
    let untied = llm::model::config::Config {
        untied_head: true,
        ..cfg.clone()
    };
    let fresh = llm::model::Model::new(&untied, &mut tensor::Rng::new(3), &nn::SharedRng::new(0));
    llama2c::write(&fresh, &untied, &path).unwrap();
    let (back, back_cfg) = llama2c::read(&path).unwrap();
    assert!(back_cfg.untied_head);
    assert_eq!(weights(&back), weights(&fresh));
}

#[test]
fn version_1_files_read_like_version_0() {
    let (model, cfg) = llama2c::read(&stories260k()).unwrap();
    // Version 1's header and order (llama2.c's export.py), written here by hand.
    let mut bytes: Vec<u8> = vec![];
    bytes.extend(0x616b_3432u32.to_le_bytes());
    bytes.extend(1i32.to_le_bytes());
    for v in [64i32, 172, 5, 8, 4, 512, 512] {
        bytes.extend(v.to_le_bytes());
    }
    bytes.push(1);
    bytes.resize(256, 0);
    let w: std::collections::HashMap<String, Vec<f32>> = weights(&model).into_iter().collect();
    let per_layer =
        |name: &str| -> Vec<String> { (0..5).map(|l| format!("blocks.{l}.{name}")).collect() };
    let mut order = per_layer("attn_norm.weight");
    order.extend(per_layer("ffn_norm.weight"));
    order.push("norm.weight".into());
    order.push("tok_embeddings.weight".into());
    for name in [
        "attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn.w1", "ffn.w2", "ffn.w3",
    ] {
        order.extend(per_layer(&format!("{name}.weight")));
    }
    for name in &order {
        bytes.extend(w[name].iter().flat_map(|x| x.to_le_bytes()));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v1.bin");
    std::fs::write(&path, &bytes).unwrap();
    let (v1, v1_cfg) = llama2c::read(&path).unwrap();
    assert_eq!(v1_cfg, cfg);
    assert_eq!(weights(&v1), weights(&model));
    // One float short is an error naming the file, not a panic.
    std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
    let err = llama2c::read(&path).err().unwrap().to_string();
    assert!(err.contains("v1.bin") && err.contains("bytes"), "{err}");
}

#[test]
fn bad_headers_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.bin");
    let header = |v: [i32; 7]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (fields, want) in [
        ([64, 172, 5, 8, 4, 512, 0], "seq_len is 0"),
        ([64, 172, -5, 8, 4, 512, 512], "n_layers is -5"),
        ([64, 172, 5, 8, 3, 512, 512], "not a Llama shape"),
        ([64, 172, 5, 8, 4, 512, 512], "needs"),
    ] {
        std::fs::write(&path, header(fields)).unwrap();
        let err = llama2c::read(&path).err().unwrap().to_string();
        assert!(err.contains(want), "{fields:?}: {err}");
    }
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    assert!(llama2c::read(&path).is_err());
}

#[test]
fn imported_into_a_run_it_samples_and_exports_as_in_llama2c() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("s260");
    let (r, model) = (run.to_str().unwrap(), stories260k());
    let tok = llama2c_files::shipped("tok512.bin");
    ok(&run_llm(&[
        "llama2c",
        "import",
        "--model",
        model.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
        "--out",
        r,
    ]));
    // run.c's `-t 0.0 -n 200`, streamed token by token: spaces and newlines in place.
    let text = ok(&run_llm(&[
        "sample",
        "--model",
        r,
        "--temperature",
        "0",
        "--max-new-tokens",
        "200",
    ]));
    assert_eq!(text, format!("{}\n", llama2c_files::GREEDY_200_TEXT));
    // A prompt starts with BOS, as in run.c: `-i "Once upon a time" -n 64` writes 60 tokens.
    let text = ok(&run_llm(&[
        "sample",
        "--model",
        r,
        "--temperature",
        "0",
        "--max-new-tokens",
        "60",
        "--prompt",
        "Once upon a time",
    ]));
    assert_eq!(text, format!("{}\n", llama2c_files::PROMPTED_64_TEXT));
    let out = tmp.path().join("back.bin");
    ok(&run_llm(&[
        "llama2c",
        "export",
        "--model",
        r,
        "--out",
        out.to_str().unwrap(),
    ]));
    let (back, _) = llama2c::read(&out).unwrap();
    let (original, _) = llama2c::read(&model).unwrap();
    assert_eq!(weights(&back), weights(&original));
}
