//! GPT-2's byte-to-unicode table: a bijection from the 256 byte values to 256 printable
//! characters, so that byte-level tokens can be written as readable strings (in `encoder.json`,
//! `vocab.bpe` and our saved merges).
//!
//! The 188 bytes that are already printable and not a space (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`)
//! map to the character with the same code point. The other 68 bytes (controls, space, DEL,
//! the C1 block, no-break space and soft hyphen) map, in increasing byte order, to U+0100,
//! U+0101, ...; so the space byte 0x20 is written `Ġ` (U+0120) and newline 0x0A is `Ċ` (U+010A).

/// Whether byte `b` is printed as itself.
const fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The number of bytes that are not printed as themselves.
const SHIFTED: usize = 68;

/// `SHIFTED_BYTES[k]` is the byte written as U+0100 + k.
const SHIFTED_BYTES: [u8; SHIFTED] = {
    let mut table = [0u8; SHIFTED];
    let (mut b, mut k) = (0usize, 0usize);
    while b < 256 {
        if !is_printable(b as u8) {
            table[k] = b as u8;
            k += 1;
        }
        b += 1;
    }
    table
};

/// `BYTE_TO_CHAR[b]` is the code point that stands for byte `b`.
const BYTE_TO_CHAR: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut k = 0;
    while k < SHIFTED {
        table[SHIFTED_BYTES[k] as usize] = 256 + k as u32;
        k += 1;
    }
    let mut b = 0;
    while b < 256 {
        if is_printable(b as u8) {
            table[b] = b as u32;
        }
        b += 1;
    }
    table
};

/// The character that stands for byte `b`.
pub fn byte_to_char(b: u8) -> char {
    char::from_u32(BYTE_TO_CHAR[b as usize]).expect("the table holds U+0021..U+0143 only")
}

/// The byte that character `c` stands for, if it is one of the 256 table characters.
pub fn char_to_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if code < 256 && is_printable(code as u8) {
        return Some(code as u8);
    }
    let k = code.checked_sub(256)? as usize;
    SHIFTED_BYTES.get(k).copied()
}

/// Bytes written as table characters.
pub fn bytes_to_unicode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

/// Table characters read back as bytes; the error is the first character outside the table.
pub fn unicode_to_bytes(s: &str) -> Result<Vec<u8>, char> {
    s.chars().map(|c| char_to_byte(c).ok_or(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_a_bijection_with_the_known_landmarks() {
        let chars: Vec<char> = (0..=255u8).map(byte_to_char).collect();
        let mut sorted = chars.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(0), '\u{100}');
        assert_eq!(byte_to_char(b'A'), 'A');
        assert_eq!(byte_to_char(0xAD), '\u{143}');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
        assert_eq!(char_to_byte('\u{144}'), None);
        assert_eq!(unicode_to_bytes("ĠtheĊ"), Ok(b" the\n".to_vec()));
        assert_eq!(unicode_to_bytes("a b"), Err(' '));
    }
}
