//! llama2.c's shipped files and its reference outputs (from llama2.c's own tests, listed in the
//! data's REFERENCE.md), shared by the tokenizer, model and command-line tests.

use std::path::{Path, PathBuf};

/// A file of `data/llama2c`.
pub fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/llama2c")
        .join(file)
}

/// The 200 ids that stories260K writes greedily after BOS.
pub const GREEDY_200_IDS: [u32; 200] = [
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267,
    337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370,
    432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414,
    270, 333, 415, 426, 13, 438, 310, 439, 419, 357, 336, 432, 313, 438, 310, 432, 278, 316, 439,
    419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418, 269, 279, 292, 416, 439,
    413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 391, 267, 337, 335,
    364, 420, 268, 388, 432, 398, 359, 280, 303, 439, 413, 272, 417, 264, 312, 426, 436, 13, 438,
    310, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426,
    338, 336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 317, 426, 359, 279, 292, 416, 439,
    413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 436, 13, 438, 310, 279, 292, 416, 439, 413,
    391, 267, 281, 421, 427, 311, 357, 432, 384, 358,
];

/// llama2.c's expected output for those ids (its `test_all.py`), without run.c's final newline.
pub const GREEDY_200_TEXT: &str = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n\
Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\n\
Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n\
Lily didn't want to help her mom, so she";

/// run.c's `-t 0 -n 64 -i "Once upon a time"`: the prompt and 60 greedy tokens.
pub const PROMPTED_64_TEXT: &str = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";
