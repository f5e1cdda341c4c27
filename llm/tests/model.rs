//! Models: Hugging Face GPT-2 logits, cached versus uncached decoding, presets building, a
//! loaded model's evaluation mode.

mod common;

use llm::generate::{generate, generate_batch, generate_uncached, Generation, Sampling};
use llm::model::config::Config;
use llm::model::Model;
use nn::{state_dict, Module, NormKind, SharedRng};
use std::path::Path;
use tensor::{DType, Rng};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

#[test]
fn hugging_face_gpt2_logits_match_transformers() {
    let dir = Path::new(FIXTURES).join("tiny-gpt2");
    let (model, cfg, tok) = llm::run::load::load_model(&dir).unwrap();
    assert_eq!(
        (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size),
        (2, 4, 64, 50257)
    );
    assert_eq!(tok.vocab_size(), 50257);
    let reference =
        state_dict::load(Path::new(FIXTURES).join("tiny-gpt2-logits.safetensors")).unwrap();
    let ids = reference.tensor("ids").unwrap().to_dtype(DType::U32);
    let want = reference.get("logits").unwrap().to_vec::<f32>();
    let got = model.logits(&ids).value().to_vec::<f32>();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "logit {i}: {g} vs transformers {w}"
        );
    }
}

fn tiny_model(block_size: usize) -> Model {
    tiny_model_with(block_size, NormKind::Layer)
}

/// [`tiny_model`] with the norm of `norm`.
fn tiny_model_with(block_size: usize, norm: NormKind) -> Model {
    let cfg = Config {
        vocab_size: 11,
        block_size,
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        norm,
        ..Config::char_small()
    };
    let model = Model::new(&cfg, &mut Rng::new(3), &SharedRng::new(0));
    // Larger weights than GPT-2's init, so the model's predictions vary with the context.
    let mut rng = Rng::new(4);
    for p in model.params() {
        p.set_value(tensor::Tensor::randn(
            &p.shape(),
            0.0,
            0.3,
            DType::F32,
            &mut rng,
        ));
    }
    model
}

#[test]
fn cached_and_uncached_greedy_decoding_agree() {
    let model = tiny_model(12);
    let g = Generation {
        max_new_tokens: 30,
        sampling: Sampling::GREEDY,
        stop_token: None,
        seed: 0,
        vocab_limit: None,
    };
    // Past the context of 12, so the sliding window is exercised too.
    let prompt = [1, 5, 2, 9];
    let cached = generate(&model, &prompt, &g, |_| {});
    assert_eq!(cached, generate_uncached(&model, &prompt, &g));
    assert!(
        cached
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "degenerate test: {cached:?}"
    );
    // A prompt longer than the context is cropped from the left.
    let long: Vec<u32> = (0..20).map(|i| i % 11).collect();
    assert_eq!(
        generate(&model, &long, &g, |_| {}),
        generate_uncached(&model, &long, &g)
    );
}

/// With batch norm in evaluation mode (as a loaded model runs), the cached decoding step
/// computes what the full pass computes, after training steps moved the running statistics.
#[test]
fn a_batch_norm_gpt_decodes_with_its_cache_as_without() {
    let mut model = tiny_model_with(12, NormKind::Batch);
    model.train();
    let ids = tensor::Tensor::from_vec((0..24u32).map(|i| i * 7 % 11).collect(), &[2, 12]);
    for _ in 0..3 {
        model.logits(&ids);
    }
    model.eval();
    let g = Generation {
        max_new_tokens: 20,
        sampling: Sampling::GREEDY,
        stop_token: None,
        seed: 0,
        vocab_limit: None,
    };
    let prompt = [1, 5, 2, 9];
    let cached = generate(&model, &prompt, &g, |_| {});
    assert_eq!(cached, generate_uncached(&model, &prompt, &g));
    assert!(
        cached.iter().any(|&t| t != cached[0]),
        "degenerate: {cached:?}"
    );
}

#[test]
fn sampling_is_reproducible_and_stops_at_the_stop_token() {
    let model = tiny_model(16);
    let g = Generation {
        max_new_tokens: 40,
        sampling: Sampling {
            temperature: 1.0,
            top_k: Some(5),
            top_p: Some(0.9),
        },
        stop_token: None,
        seed: 9,
        vocab_limit: None,
    };
    let a = generate(&model, &[3], &g, |_| {});
    assert_eq!(a, generate(&model, &[3], &g, |_| {}));
    assert_eq!(a, generate_uncached(&model, &[3], &g));
    let stop = a[5];
    let first = a.iter().position(|&t| t == stop).unwrap();
    let stopped = generate(
        &model,
        &[3],
        &Generation {
            stop_token: Some(stop),
            ..g
        },
        |_| {},
    );
    assert_eq!(stopped, a[..=first].to_vec());
}

/// Batched generation against one prompt at a time: the same tokens for every sequence, whose
/// prompts differ in length (one longer than the context), some of which stop early and some
/// of which run past the context of 12.
#[test]
fn batched_generation_gives_each_sequence_its_own_tokens() {
    let model = tiny_model(12);
    let prompts: Vec<Vec<u32>> = vec![
        vec![3],
        vec![1, 5, 2, 9, 4],
        (0..15).map(|i| (i * 7) % 11).collect(),
        vec![10, 0],
        vec![6, 6, 6, 1, 2, 3, 4, 5, 6],
    ];
    for sampling in [
        Sampling::GREEDY,
        Sampling {
            temperature: 1.0,
            top_k: Some(6),
            top_p: None,
        },
    ] {
        for stop_token in [None, Some(4)] {
            let g = Generation {
                max_new_tokens: 20,
                sampling,
                stop_token,
                seed: 21,
                vocab_limit: None,
            };
            let batched = generate_batch(&model, &prompts, &g);
            for (i, prompt) in prompts.iter().enumerate() {
                let alone = Generation {
                    seed: g.seed + i as u64,
                    ..g.clone()
                };
                assert_eq!(
                    batched[i],
                    generate(&model, prompt, &alone, |_| {}),
                    "sequence {i}, {sampling:?}, stop {stop_token:?}"
                );
            }
            let lengths: Vec<usize> = batched.iter().map(Vec::len).collect();
            if stop_token.is_some() {
                assert!(
                    lengths.iter().any(|&n| n < 20) && lengths.iter().any(|&n| n > 1),
                    "degenerate test: lengths {lengths:?}"
                );
            }
        }
    }
}

#[test]
fn every_preset_builds() {
    for name in llm::model::config::PRESETS.iter().filter(|&&n| n != "gpt2") {
        let mut cfg = Config::preset(name).unwrap();
        cfg.vocab_size = 65;
        let model = Model::new(&cfg, &mut Rng::new(0), &SharedRng::new(0));
        assert!(model.num_params() > 0, "{name}");
    }
    let sc = Config {
        vocab_size: 65,
        ..Config::preset("shakespeare-char").unwrap()
    };
    let params = Model::new(&sc, &mut Rng::new(0), &SharedRng::new(0)).num_params();
    // nanoGPT reports 10.65M for this model (it leaves the position embedding out of its count).
    let without_positions = params - sc.block_size * sc.n_embd;
    assert_eq!(without_positions, 10_646_784);
}

#[test]
fn new_token_rows_are_the_mean_and_old_rows_stay_bit_identical() {
    let mut model = tiny_model(8);
    let old = model.gpt().unwrap().wte.weight.value().to_vec::<f32>();
    let width = model.width();
    assert_eq!(model.add_token_rows(11, 2).unwrap(), 13);
    let grown = model.gpt().unwrap().wte.weight.value();
    assert_eq!(grown.shape(), &[13, width]);
    let grown = grown.to_vec::<f32>();
    assert_eq!(grown[..11 * width], old[..], "old rows kept bit for bit");
    for c in 0..width {
        let mean = (0..11).map(|r| old[r * width + c]).sum::<f32>() / 11.0;
        for row in [11, 12] {
            assert!((grown[row * width + c] - mean).abs() < 1e-6);
        }
    }
    let logits = model.logits(&tensor::Tensor::from_vec(vec![12u32, 3], &[1, 2]));
    assert_eq!(
        logits.shape(),
        &[1, 2, 13],
        "the tied head grows with the table"
    );
    assert!(
        model.add_token_rows(14, 1).is_err(),
        "rows must follow the table's"
    );
}

/// A model loaded from a run evaluates with dropout off, though it trained with dropout 0.5:
/// the same ids give the same logits twice.
#[test]
fn a_loaded_model_runs_without_dropout() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("dropout.json");
    std::fs::write(
        &cfg,
        r#"{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, "batch_size": 4,
            "dropout": 0.5, "eval_interval": 0, "warmup_iters": 1, "lr_decay_iters": 10}"#,
    )
    .unwrap();
    let run = tmp.path().join("run");
    common::stdout(&common::llm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--max-iters",
        "1",
        "--sample-chars",
        "0",
        "--out",
        run.to_str().unwrap(),
    ]));
    let (model, _, _) = llm::run::load::load_model(&run).unwrap();
    let ids = tensor::Tensor::from_vec(vec![1u32, 5, 9, 2, 7], &[1, 5]);
    let first = model.logits(&ids).value().to_vec::<f32>();
    assert_eq!(first, model.logits(&ids).value().to_vec::<f32>());
}
