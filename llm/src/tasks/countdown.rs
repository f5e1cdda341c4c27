//! Countdown: reach a target from a few numbers with `+`, `-`, `*` and parentheses, each number
//! used at most once.
//!
//! The prompt lists the numbers in increasing order, then ` -> `, the target and `=`; the
//! answer is one expression that reaches it, written without spaces:
//!
//! ```text
//! 3 7 25 -> 46=25+3*7
//! ```
//!
//! Problem `i` draws 3 or 4 numbers (the spec's `numbers`), each uniform in `1..=25`
//! ([`MAX_NUMBER`]), repeats allowed. It then picks 2 or more of them (how many uniform, which
//! ones at random) and joins them into a random expression: while more than one piece is left,
//! two random pieces are joined by a random operation, the larger first for `-`, and `+`
//! instead of `-` when both are equal. So every intermediate result is a positive integer, and
//! the value of the expression is the target, reachable by construction. The stored answer is
//! that expression with only the parentheses it needs; any other expression that reaches the
//! target scores as well.
//!
//! The numbers are sorted so that one multiset and target give one prompt; repeated prompts are
//! dropped, the first kept (so a set may hold fewer than `n` problems), and [`super::is_test`]
//! splits the rest, so no test prompt is a training prompt.
//!
//! # Scoring
//!
//! [`score`] parses the answer in a model's output ([`super::answer_text`]) as an expression
//! over non-negative integers, `+`, `-`, `*` and parentheses (spaces allowed), and evaluates it
//! with checked integer arithmetic ([`evaluate`]). The expression is invalid, scoring 0, if it
//! has any other character, does not parse, overflows, or uses a number not among the prompt's
//! or more often than the prompt lists it. A valid expression scores 1 when its value is the
//! target `t`, and otherwise the partial credit `0.5 * max(0, 1 - |value - t| / max(t, 1))`:
//! below one half, and 0 once the value is off by the target or more. So for the target 46,
//! the value 40 scores `0.5 * (1 - 6/46)`, about 0.435.

use super::arithmetic::Op;
use super::{answer_text, dedupe, Problem};
use crate::{Error, Result};
use tensor::Rng;

/// The largest number drawn.
pub const MAX_NUMBER: i64 = 25;

/// How deep parentheses may nest in an answer before it is invalid.
const MAX_DEPTH: usize = 64;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountdownSpec {
    /// Problems to draw (fewer remain when prompts repeat).
    pub n: usize,
    /// Numbers in each problem: 3 or 4.
    pub numbers: usize,
    /// The generator's seed.
    pub seed: u64,
}

/// A piece of an expression being built: its value, its text and its precedence.
struct Piece {
    value: i64,
    text: String,
    /// Whether the top operation is `+` or `-`, so that the piece needs parentheses as an
    /// operand of `*` or on the right of `-`.
    sum: bool,
}

impl Piece {
    fn wrapped(&self, needed: bool) -> String {
        match needed {
            true => format!("({})", self.text),
            false => self.text.clone(),
        }
    }
}

/// `a op b` as a piece; for `-`, the larger first, and `+` when both are equal.
fn join(a: Piece, op: Op, b: Piece) -> Piece {
    match op {
        Op::Sub if a.value == b.value => join(a, Op::Add, b),
        Op::Sub if a.value < b.value => join(b, Op::Sub, a),
        Op::Add => Piece {
            value: a.value + b.value,
            text: format!("{}+{}", a.text, b.text),
            sum: true,
        },
        Op::Sub => Piece {
            value: a.value - b.value,
            text: format!("{}-{}", a.text, b.wrapped(b.sum)),
            sum: true,
        },
        Op::Mul => Piece {
            value: a.value * b.value,
            text: format!("{}*{}", a.wrapped(a.sum), b.wrapped(b.sum)),
            sum: false,
        },
    }
}

/// The prompt for `numbers` (in any order) and `target`: `3 7 25 -> 46=`.
pub fn prompt(numbers: &[i64], target: i64) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let list: Vec<String> = sorted.iter().map(i64::to_string).collect();
    format!("{} -> {target}=", list.join(" "))
}

/// The numbers and target of a prompt `N N N -> T=`, or `None` if it is not one.
pub fn parse_prompt(prompt: &str) -> Option<(Vec<i64>, i64)> {
    let (numbers, target) = prompt.strip_suffix('=')?.split_once(" -> ")?;
    let numbers: Vec<i64> = numbers
        .split(' ')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    Some((numbers, target.parse().ok()?))
}

/// The problems of `spec`, in generation order, repeated prompts dropped (see the module
/// documentation). An error unless `numbers` is 3 or 4.
pub fn generate(spec: &CountdownSpec) -> Result<Vec<Problem>> {
    if !matches!(spec.numbers, 3 | 4) {
        return Err(Error::Invalid(format!(
            "countdown problems of {} numbers: the count must be 3 or 4",
            spec.numbers
        )));
    }
    let mut rng = Rng::new(spec.seed);
    let mut problems = Vec::with_capacity(spec.n);
    for _ in 0..spec.n {
        let numbers: Vec<i64> = (0..spec.numbers)
            .map(|_| 1 + rng.below(MAX_NUMBER as usize) as i64)
            .collect();
        let used = 2 + rng.below(spec.numbers - 1);
        let mut pieces: Vec<Piece> = numbers
            .iter()
            .map(|&value| Piece {
                value,
                text: value.to_string(),
                sum: false,
            })
            .collect();
        while pieces.len() > used {
            pieces.swap_remove(rng.below(pieces.len()));
        }
        while pieces.len() > 1 {
            let a = pieces.swap_remove(rng.below(pieces.len()));
            let b = pieces.swap_remove(rng.below(pieces.len()));
            let op = Op::ALL[rng.below(Op::ALL.len())];
            pieces.push(join(a, op, b));
        }
        let expression = pieces.pop().expect("one piece is left");
        problems.push(Problem::new(
            prompt(&numbers, expression.value),
            expression.text,
        ));
    }
    Ok(dedupe(problems))
}

/// The value of `expression`, an expression over `+`, `-`, `*`, parentheses and non-negative
/// decimal integers (spaces allowed between them), which may use each of `available` at most
/// as often as it is listed; or why it is invalid. Arithmetic is checked: an overflow is
/// invalid.
pub fn evaluate(expression: &str, available: &[i64]) -> std::result::Result<i64, String> {
    let mut parser = Parser {
        text: expression.as_bytes(),
        at: 0,
        depth: 0,
        used: vec![],
    };
    let value = parser.sum()?;
    parser.skip_spaces();
    if parser.at < parser.text.len() {
        return Err(parser.unexpected());
    }
    let mut left = available.to_vec();
    for n in parser.used {
        match left.iter().position(|&m| m == n) {
            Some(i) => {
                left.swap_remove(i);
            }
            None if available.contains(&n) => {
                return Err(format!("{n} is used more often than it is given"))
            }
            None => return Err(format!("{n} is not among the numbers")),
        }
    }
    Ok(value)
}

/// A recursive-descent parser: `sum := product (('+' | '-') product)*`,
/// `product := atom ('*' atom)*`, `atom := number | '(' sum ')'`.
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
    /// The numbers met, in order.
    used: Vec<i64>,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.text.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    /// Why the character at the cursor is unexpected.
    fn unexpected(&self) -> String {
        match self.text[self.at] {
            c if c.is_ascii() => format!("unexpected `{}` at byte {}", c as char, self.at),
            _ => format!("unexpected non-ASCII text at byte {}", self.at),
        }
    }

    /// The next character after spaces, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.text.get(self.at).copied()
    }

    fn sum(&mut self) -> std::result::Result<i64, String> {
        let mut value = self.product()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let right = self.product()?;
            let op = if c == b'+' { Op::Add } else { Op::Sub };
            value = op.apply(value, right).ok_or("the value overflows")?;
        }
        Ok(value)
    }

    fn product(&mut self) -> std::result::Result<i64, String> {
        let mut value = self.atom()?;
        while self.peek() == Some(b'*') {
            self.at += 1;
            let right = self.atom()?;
            value = value.checked_mul(right).ok_or("the value overflows")?;
        }
        Ok(value)
    }

    fn atom(&mut self) -> std::result::Result<i64, String> {
        match self.peek() {
            Some(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("parentheses nest deeper than {MAX_DEPTH}"));
                }
                self.at += 1;
                let value = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err(format!("expected `)` at byte {}", self.at));
                }
                self.at += 1;
                self.depth -= 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.at]).expect("ASCII");
                let n: i64 = digits
                    .parse()
                    .map_err(|_| format!("the number {digits} is too large"))?;
                self.used.push(n);
                Ok(n)
            }
            Some(c) if c.is_ascii() => Err(format!(
                "expected a number or `(` at byte {}, found `{}`",
                self.at, c as char
            )),
            Some(_) => Err(self.unexpected()),
            None => Err("the expression ends early".into()),
        }
    }
}

/// The partial credit of a valid expression whose value misses `target` (see the module
/// documentation): `0.5 * max(0, 1 - |value - target| / max(target, 1))`.
pub fn partial_credit(value: i64, target: i64) -> f64 {
    let miss = value.abs_diff(target) as f64 / target.max(1) as f64;
    0.5 * (1.0 - miss).max(0.0)
}

/// The score of the answer in `output` ([`answer_text`]) for `problem`: 1 if it is a valid
/// expression reaching the target, [`partial_credit`] if it is valid and misses, 0 if it is
/// invalid or the prompt is not a countdown prompt.
pub fn score(problem: &Problem, output: &str) -> f64 {
    let Some((numbers, target)) = parse_prompt(&problem.prompt) else {
        return 0.0;
    };
    match evaluate(answer_text(output), &numbers) {
        Ok(value) if value == target => 1.0,
        Ok(value) => partial_credit(value, target),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn spec(n: usize, numbers: usize, seed: u64) -> CountdownSpec {
        CountdownSpec { n, numbers, seed }
    }

    #[test]
    fn a_seed_gives_one_set_and_another_seed_another() {
        let a = generate(&spec(200, 4, 1)).unwrap();
        assert_eq!(generate(&spec(200, 4, 1)).unwrap(), a);
        assert_ne!(generate(&spec(200, 4, 2)).unwrap(), a);
        assert!(generate(&spec(5, 2, 1)).is_err());
        assert!(generate(&spec(5, 5, 1)).is_err());
    }

    #[test]
    fn every_stored_answer_reaches_its_target() {
        for numbers in [3, 4] {
            let problems = generate(&spec(3000, numbers, 9)).unwrap();
            let mut shapes = HashSet::new();
            for p in &problems {
                let (given, target) = parse_prompt(&p.prompt).unwrap();
                assert_eq!(given.len(), numbers);
                assert!(given.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
                assert!(given.iter().all(|n| (1..=MAX_NUMBER).contains(n)));
                assert!(target > 0, "{p:?}");
                assert_eq!(evaluate(&p.answer, &given), Ok(target), "{p:?}");
                assert_eq!(score(p, &p.answer), 1.0, "{p:?}");
                assert_eq!(score(p, &format!("{}\n", p.answer)), 1.0);
                shapes.insert((p.answer.contains('('), p.answer.contains('*')));
            }
            assert_eq!(shapes.len(), 4, "answers with and without * and ()");
        }
    }

    #[test]
    fn the_prompt_format_round_trips() {
        assert_eq!(prompt(&[25, 3, 7], 46), "3 7 25 -> 46=");
        assert_eq!(parse_prompt("3 7 25 -> 46="), Some((vec![3, 7, 25], 46)));
        for bad in [
            "3 7 25 -> 46",
            "3 7 25 46=",
            "3  7 -> 4=",
            "3 x -> 4=",
            " -> 4=",
        ] {
            assert_eq!(parse_prompt(bad), None, "{bad}");
        }
    }

    #[test]
    fn repeated_prompts_never_reach_both_splits() {
        let problems = generate(&spec(20_000, 3, 4)).unwrap();
        assert!(problems.len() < 20_000, "some prompts repeat");
        let (train, test) = super::super::split(&problems);
        let train: HashSet<&str> = train.iter().map(|p| p.prompt.as_str()).collect();
        assert!(test.iter().all(|p| !train.contains(p.prompt.as_str())));
    }

    #[test]
    fn the_parser_follows_precedence_and_rejects_what_it_should() {
        let given = [2, 3, 4, 4];
        assert_eq!(evaluate("2+3*4", &given), Ok(14));
        assert_eq!(evaluate("(2+3)*4", &given), Ok(20));
        assert_eq!(evaluate("2-3-4", &given), Ok(-5));
        assert_eq!(evaluate("2-(3-4)", &given), Ok(3));
        assert_eq!(evaluate(" 4 * ( 4 - 2 ) ", &given), Ok(8));
        assert_eq!(evaluate("((4))", &given), Ok(4));
        for (bad, why) in [
            ("2**3", "expected a number or `(` at byte 2, found `*`"),
            ("(1+2", "expected `)` at byte 4"),
            ("(2+3", "expected `)` at byte 4"),
            ("2+3)", "unexpected `)` at byte 3"),
            ("2/4", "unexpected `/` at byte 1"),
            ("-2+4", "expected a number or `(` at byte 0, found `-`"),
            ("", "the expression ends early"),
            ("2+", "the expression ends early"),
            ("2 3", "unexpected `3` at byte 2"),
            ("2+5", "5 is not among the numbers"),
            ("2+2", "2 is used more often than it is given"),
            ("4*4*4", "4 is used more often than it is given"),
            (
                "99999999999999999999",
                "the number 99999999999999999999 is too large",
            ),
            ("2×3", "unexpected non-ASCII text at byte 1"),
        ] {
            assert_eq!(evaluate(bad, &given), Err(why.to_string()), "{bad}");
        }
        let big = [3_037_000_500, 3_037_000_500];
        assert_eq!(
            evaluate("3037000500*3037000500", &big),
            Err("the value overflows".into())
        );
        let deep = format!("{}2{}", "(".repeat(65), ")".repeat(65));
        assert!(evaluate(&deep, &given).is_err());
        let ok = format!("{}2{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(evaluate(&ok, &given), Ok(2));
    }

    #[test]
    fn misses_earn_partial_credit_and_invalid_answers_nothing() {
        let p = Problem::new("3 7 25 -> 46=", "25+3*7");
        assert_eq!(score(&p, "25+3*7"), 1.0);
        assert_eq!(score(&p, "(7*3)+25<|endoftext|>"), 1.0);
        // 25+7+3 = 35: 0.5 * (1 - 11/46).
        assert!((score(&p, "25+7+3") - 0.5 * 35.0 / 46.0).abs() < 1e-12);
        // 7*3 = 21: 0.5 * (1 - 25/46).
        assert!((score(&p, "7*3") - 0.5 * 21.0 / 46.0).abs() < 1e-12);
        // 25*7 = 175 is off by more than 46.
        assert_eq!(score(&p, "25*7"), 0.0);
        // 3-25 = -22, off by 68.
        assert_eq!(score(&p, "3-25"), 0.0);
        assert_eq!(score(&p, "25+3*7*7"), 0.0, "7 given once");
        assert_eq!(score(&p, "25+21"), 0.0, "21 not given");
        assert_eq!(score(&p, "46"), 0.0);
        assert_eq!(score(&p, ""), 0.0);
        assert_eq!(score(&Problem::new("nonsense", "1"), "1"), 0.0);
        assert_eq!(partial_credit(15, 10), 0.25);
        assert_eq!(partial_credit(8, 10), 0.4);
        assert_eq!(partial_credit(20, 10), 0.0);
        assert_eq!(partial_credit(1, 0), 0.0);
        assert_eq!(partial_credit(3, 4), 0.375);
        assert_eq!(partial_credit(-1, 4), 0.0);
    }
}
