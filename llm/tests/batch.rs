//! Padded batches: a padded batch's loss and gradients equal those of its examples one by one,
//! and a batch where nothing is scored gives zero loss and zero gradients, never NaN.

use llm::data::batch::{masked_cross_entropy, Batch, IGNORE};
use llm::model::config::Config;
use llm::model::Model;
use nn::{Module, SharedRng};
use tensor::Rng;

fn model() -> Model {
    let cfg = Config {
        vocab_size: 30,
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        block_size: 8,
        ..Config::char_small()
    };
    Model::new(&cfg, &mut Rng::new(3), &SharedRng::new(0))
}

/// The loss of `batch` and the gradient of every parameter, flattened.
fn loss_and_grads(model: &Model, batch: &Batch) -> (f64, Vec<f32>, usize) {
    for p in model.params() {
        p.zero_grad();
    }
    let targets = batch.targets.as_ref().unwrap();
    let scored = targets
        .to_vec::<i64>()
        .iter()
        .filter(|&&t| t != IGNORE)
        .count();
    let loss = masked_cross_entropy(&model.logits(&batch.ids), targets);
    let value = loss.value().item();
    loss.backward();
    let grads = model
        .params()
        .iter()
        .flat_map(|p| {
            p.grad()
                .map_or(vec![0.0; p.value().numel()], |g| g.to_vec::<f32>())
        })
        .collect();
    (value, grads, scored)
}

#[test]
fn a_padded_batch_equals_its_examples_one_by_one() {
    let model = model();
    let examples: [(&[u32], &[bool]); 3] = [
        (&[1, 5, 9, 2, 7, 3], &[false, false, true, true, true, true]),
        (&[4, 4, 8], &[true, true, true]),
        (&[6, 2], &[false, true]),
    ];
    let (loss, grads, scored) = loss_and_grads(&model, &Batch::language(&examples, 0));
    assert_eq!(scored, 4 + 2 + 1);
    // One by one: the batch's mean is each example's token-weighted share.
    let (mut want_loss, mut want_grads) = (0.0, vec![0.0f64; grads.len()]);
    for e in &examples {
        let (l, g, n) = loss_and_grads(&model, &Batch::language(&[*e], 0));
        let share = n as f64 / scored as f64;
        want_loss += l * share;
        for (w, x) in want_grads.iter_mut().zip(&g) {
            *w += f64::from(*x) * share;
        }
    }
    assert!((loss - want_loss).abs() < 1e-6, "{loss} vs {want_loss}");
    for (i, (g, w)) in grads.iter().zip(&want_grads).enumerate() {
        assert!((f64::from(*g) - w).abs() < 1e-6, "gradient {i}: {g} vs {w}");
    }
}

#[test]
fn a_batch_with_nothing_scored_gives_zero_loss_and_zero_gradients() {
    let model = model();
    let batch = Batch::language(&[(&[1, 2, 3], &[true, false, false]), (&[7], &[true])], 0);
    let targets = batch.targets.as_ref().unwrap();
    assert!(targets.to_vec::<i64>().iter().all(|&t| t == IGNORE));
    let (loss, grads, _) = loss_and_grads(&model, &batch);
    assert_eq!(loss, 0.0);
    assert!(grads.iter().all(|&g| g == 0.0));
}

#[test]
fn padding_and_targets_are_laid_out_as_documented() {
    let batch = Batch::language(&[(&[1, 2, 3], &[true, false, true]), (&[9], &[true])], 7);
    assert_eq!(batch.ids.to_vec::<u32>(), [1, 2, 3, 9, 7, 7]);
    assert_eq!(batch.lengths, [3, 1]);
    let t = batch.targets.unwrap().to_vec::<i64>();
    assert_eq!(t, [IGNORE, 3, IGNORE, IGNORE, IGNORE, IGNORE]);
    let plain = Batch::padded(&[&[5], &[6, 6]], 0);
    assert_eq!(plain.ids.shape(), &[2, 2]);
    assert!(plain.targets.is_none());
}
