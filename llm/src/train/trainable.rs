//! Which parameters a stage trains: all of them, or those whose names match patterns (the rest
//! are frozen: they get no gradient and no optimizer state).
//!
//! A pattern is a parameter name in which `*` stands for any run of characters, dots included:
//! `classifier.*`, `blocks.3.*`, `*.lora_a`.

use crate::{Error, Result};
use nn::Module;

/// True when `name` matches `pattern` (`*` matches any run of characters).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| matches(rest, &tail[i..]))
        }
    }
}

/// Freezes every parameter of `model` that matches none of `patterns` and unfreezes those that
/// match one; returns the number of trainable values. A pattern that matches no parameter is
/// an error naming it (a typo would otherwise freeze what it meant to train).
pub fn train_only(model: &dyn Module, patterns: &[String]) -> Result<usize> {
    let params = model.named_params();
    if let Some(p) = patterns
        .iter()
        .find(|p| !params.iter().any(|(name, _)| matches(p, name)))
    {
        return Err(Error::Invalid(format!(
            "the pattern {p:?} matches no parameter of the model"
        )));
    }
    let mut trainable = 0;
    for (name, p) in &params {
        let on = patterns.iter().any(|pat| matches(pat, name));
        p.set_requires_grad(on);
        if on {
            trainable += p.numel();
        }
    }
    Ok(trainable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_of_characters() {
        assert!(matches("classifier.*", "classifier.weight"));
        assert!(matches("blocks.3.*", "blocks.3.attn.qkv.weight"));
        assert!(!matches("blocks.3.*", "blocks.31.ln1.weight"));
        assert!(matches("*.lora_a", "blocks.0.attn.qkv.lora_a"));
        assert!(matches("*", "anything"));
        assert!(matches("ln_f.weight", "ln_f.weight"));
        assert!(!matches("ln_f.weight", "ln_f.bias"));
        assert!(matches("a*c*e", "abcde"));
        assert!(!matches("a*c*e", "abcdf"));
    }
}
