//! Integer arithmetic: `37+45=` → `82`, `3-11=` → `-8`, `12*34=` → `408`.
//!
//! Problem `i` of a set draws its operation uniformly from the spec's operations, then two
//! operands. Each operand first draws its digit count uniformly from `1..=digits`, then its
//! value uniformly among the numbers of exactly that many digits (one digit: 0 to 9; two: 10 to
//! 99; ...). So a 4-digit set also holds 1- to 3-digit operands, a curriculum in itself, and
//! short problems are not swamped by long ones as they would be were values uniform in
//! `0..10^digits`. Subtraction may go negative (`3-11=` → `-8`).
//!
//! With `reverse`, the digits of every answer are written least significant first, the sign
//! still leading: `82` becomes `28`, `120` becomes `021`, `-123` becomes `-321`. A model that
//! writes left to right then emits each digit after the digits that its carry depends on, which
//! small transformers learn far more easily.
//!
//! A set is the same for the same spec on every platform (the generator is [`tensor::Rng`]).
//! Repeated prompts are dropped, the first kept, so a set may hold fewer than `n` problems
//! (with 1-digit operands there are only 100 prompts per operation); see [`super`] for the
//! train/test split. Answers are scored by exact match ([`score`]).

use super::{answer_text, dedupe, Problem};
use crate::{Error, Result};
use tensor::Rng;

/// The largest operand length: products of two 9-digit numbers still fit an `i64`.
pub const MAX_DIGITS: usize = 9;

/// An operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 3] = [Op::Add, Op::Sub, Op::Mul];

    /// The operation's symbol: `+`, `-` or `*`.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
        }
    }

    /// `a op b`, or `None` on overflow.
    pub fn apply(self, a: i64, b: i64) -> Option<i64> {
        match self {
            Op::Add => a.checked_add(b),
            Op::Sub => a.checked_sub(b),
            Op::Mul => a.checked_mul(b),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.symbol())
    }
}

impl std::str::FromStr for Op {
    type Err = Error;

    /// `+`, `-` or `*`.
    fn from_str(s: &str) -> Result<Op> {
        match s.trim() {
            "+" => Ok(Op::Add),
            "-" => Ok(Op::Sub),
            "*" => Ok(Op::Mul),
            other => Err(Error::Invalid(format!(
                "unknown operation `{other}`: expected +, - or *"
            ))),
        }
    }
}

/// Operations from a comma-separated list such as `+,-,*`. Listing one twice draws it twice as
/// often; an empty list or item is an error.
pub fn parse_ops(list: &str) -> Result<Vec<Op>> {
    list.split(',').map(str::parse).collect()
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArithmeticSpec {
    /// Problems to draw (fewer remain when prompts repeat).
    pub n: usize,
    /// The longest operand, in digits: 1 to [`MAX_DIGITS`].
    pub digits: usize,
    /// The operations, drawn uniformly.
    pub ops: Vec<Op>,
    /// The generator's seed.
    pub seed: u64,
    /// Write answers least significant digit first (see the module documentation).
    pub reverse: bool,
}

/// The problems of `spec`, in generation order, repeated prompts dropped (see the module
/// documentation). An error for `digits` outside `1..=9` or no operations.
pub fn generate(spec: &ArithmeticSpec) -> Result<Vec<Problem>> {
    if !(1..=MAX_DIGITS).contains(&spec.digits) {
        return Err(Error::Invalid(format!(
            "operands of {} digits: the digits must be 1 to {MAX_DIGITS}",
            spec.digits
        )));
    }
    if spec.ops.is_empty() {
        return Err(Error::Invalid("no operations to draw from".into()));
    }
    let mut rng = Rng::new(spec.seed);
    let mut problems = Vec::with_capacity(spec.n);
    for _ in 0..spec.n {
        let op = spec.ops[rng.below(spec.ops.len())];
        let a = operand(&mut rng, spec.digits);
        let b = operand(&mut rng, spec.digits);
        let value = op.apply(a, b).expect("9-digit operands cannot overflow");
        problems.push(Problem::new(
            format!("{a}{op}{b}="),
            format_answer(value, spec.reverse),
        ));
    }
    Ok(dedupe(problems))
}

/// An operand: a digit count uniform in `1..=digits`, then a value uniform among the numbers of
/// exactly that many digits.
fn operand(rng: &mut Rng, digits: usize) -> i64 {
    let d = 1 + rng.below(digits) as u32;
    let low = match d {
        1 => 0,
        _ => 10i64.pow(d - 1),
    };
    let high = 10i64.pow(d);
    low + rng.below((high - low) as usize) as i64
}

/// `value` written as an answer: in decimal, or with `reverse` its digits least significant
/// first after the sign (`-123` → `-321`).
pub fn format_answer(value: i64, reverse: bool) -> String {
    let text = value.to_string();
    match reverse {
        false => text,
        true => {
            let (sign, digits) = text.split_at(usize::from(value < 0));
            format!("{sign}{}", digits.chars().rev().collect::<String>())
        }
    }
}

/// The operands and operation of a prompt `A op B=` (A and B decimal digits), or `None` if it
/// is not one.
pub fn parse_prompt(prompt: &str) -> Option<(i64, Op, i64)> {
    let body = prompt.strip_suffix('=')?;
    let at = body.find(|c: char| !c.is_ascii_digit())?;
    let (a, rest) = body.split_at(at);
    let mut chars = rest.chars();
    let op = chars.next()?.to_string().parse().ok()?;
    let b = chars.as_str();
    let number = |s: &str| match !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        true => s.parse::<i64>().ok(),
        false => None,
    };
    Some((number(a)?, op, number(b)?))
}

/// A prompt's operation and the digits of its longer operand, for reporting accuracy by kind:
/// `kind("123+45=")` is `Some((Op::Add, 3))`. `None` if the prompt is not `A op B=`.
pub fn kind(prompt: &str) -> Option<(Op, usize)> {
    let (_, op, _) = parse_prompt(prompt)?;
    let body = &prompt[..prompt.len() - 1];
    let (a, b) = body.split_once(op.symbol())?;
    Some((op, a.len().max(b.len())))
}

/// 1 when the answer in `output` ([`answer_text`]) is exactly the problem's answer (both
/// trimmed), else 0.
pub fn score(problem: &Problem, output: &str) -> f64 {
    match answer_text(output) == problem.answer.trim() {
        true => 1.0,
        false => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn spec(n: usize, digits: usize, ops: &str, seed: u64, reverse: bool) -> ArithmeticSpec {
        ArithmeticSpec {
            n,
            digits,
            ops: parse_ops(ops).unwrap(),
            seed,
            reverse,
        }
    }

    /// The answer recomputed from the prompt, independently of the generator.
    fn recompute(prompt: &str) -> i64 {
        let (a, op, b) = parse_prompt(prompt).unwrap();
        match op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
        }
    }

    #[test]
    fn ops_parse_and_unknown_ones_are_named() {
        assert_eq!(parse_ops("+,-,*").unwrap(), Op::ALL);
        assert_eq!(parse_ops("*").unwrap(), [Op::Mul]);
        let err = parse_ops("+,/").unwrap_err().to_string();
        assert_eq!(err, "unknown operation `/`: expected +, - or *");
        assert!(parse_ops("").is_err());
        assert!(parse_ops("+,").is_err());
    }

    #[test]
    fn a_seed_gives_one_set_and_another_seed_another() {
        let s = spec(300, 3, "+,-,*", 7, false);
        let a = generate(&s).unwrap();
        assert_eq!(generate(&s).unwrap(), a);
        assert_ne!(generate(&ArithmeticSpec { seed: 8, ..s }).unwrap(), a);
        assert!(a.len() > 280, "few repeats: only short operands repeat");
    }

    #[test]
    fn answers_are_right_and_operands_span_every_length() {
        let problems = generate(&spec(2000, 4, "+,-,*", 1, false)).unwrap();
        let mut kinds = HashSet::new();
        for p in &problems {
            assert_eq!(p.answer, recompute(&p.prompt).to_string(), "{p:?}");
            assert_eq!(score(p, &p.answer), 1.0);
            let (a, op, b) = parse_prompt(&p.prompt).unwrap();
            for x in [a, b] {
                assert!((0..10_000).contains(&x));
            }
            kinds.insert(kind(&p.prompt).unwrap());
            assert_eq!(kind(&p.prompt).unwrap().0, op);
        }
        for op in Op::ALL {
            for d in 1..=4 {
                assert!(kinds.contains(&(op, d)), "no {op} problem of {d} digits");
            }
        }
        assert!(problems.iter().any(|p| p.answer.starts_with('-')));
    }

    #[test]
    fn reversed_answers_keep_the_sign_first() {
        assert_eq!(format_answer(123, true), "321");
        assert_eq!(format_answer(120, true), "021");
        assert_eq!(format_answer(-8, true), "-8");
        assert_eq!(format_answer(-123, true), "-321");
        assert_eq!(format_answer(0, true), "0");
        assert_eq!(format_answer(-123, false), "-123");
        let plain = generate(&spec(500, 3, "+,-", 5, false)).unwrap();
        let reversed = generate(&spec(500, 3, "+,-", 5, true)).unwrap();
        assert_eq!(plain.len(), reversed.len());
        for (p, r) in plain.iter().zip(&reversed) {
            assert_eq!(p.prompt, r.prompt);
            assert_eq!(r.answer, format_answer(recompute(&r.prompt), true));
        }
    }

    #[test]
    fn repeated_prompts_never_reach_both_splits() {
        let problems = generate(&spec(500, 1, "+,-", 3, false)).unwrap();
        assert!(problems.len() < 500, "1-digit problems repeat");
        assert!(problems.len() <= 200);
        let (train, test) = super::super::split(&problems);
        let train: HashSet<&str> = train.iter().map(|p| p.prompt.as_str()).collect();
        assert!(test.iter().all(|p| !train.contains(p.prompt.as_str())));
        assert_eq!(train.len() + test.len(), problems.len());
    }

    #[test]
    fn bad_specs_are_errors() {
        for digits in [0, 10] {
            assert!(generate(&ArithmeticSpec {
                digits,
                ..spec(5, 1, "+", 1, false)
            })
            .is_err());
        }
        let empty = ArithmeticSpec {
            ops: vec![],
            ..spec(5, 1, "+", 1, false)
        };
        assert!(generate(&empty).is_err());
        let nine = generate(&spec(200, 9, "*", 1, false)).unwrap();
        assert!(nine
            .iter()
            .all(|p| p.answer == recompute(&p.prompt).to_string()));
    }

    #[test]
    fn prompts_parse_and_scores_are_exact() {
        assert_eq!(parse_prompt("37+45="), Some((37, Op::Add, 45)));
        assert_eq!(parse_prompt("3-11="), Some((3, Op::Sub, 11)));
        assert_eq!(kind("123*4="), Some((Op::Mul, 3)));
        assert_eq!(kind("0+7="), Some((Op::Add, 1)));
        for bad in ["37+45", "+4=", "3+=", "3/4=", "3+-4=", "a+1="] {
            assert_eq!(parse_prompt(bad), None, "{bad}");
            assert_eq!(kind(bad), None, "{bad}");
        }
        let p = Problem::new("3-11=", "-8");
        assert_eq!(score(&p, "-8"), 1.0);
        assert_eq!(score(&p, " -8 \nmore"), 1.0);
        assert_eq!(score(&p, "-8<|endoftext|>"), 1.0);
        assert_eq!(score(&p, "8"), 0.0);
        assert_eq!(score(&p, "-80"), 0.0);
        assert_eq!(score(&p, ""), 0.0);
    }
}
