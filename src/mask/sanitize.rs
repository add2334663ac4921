//! Captured text is data, not terminal commands: escape sequences (ANSI
//! CSI and OSC, DCS and friends, C1 controls) and C0 controls other than
//! newline and tab are removed before text reaches a report or a terminal.

use std::borrow::Cow;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';

/// `text` without terminal escape sequences and control characters
/// (newline and tab are kept).
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Two-character sequences (ESC c, ESC 7, ...) and a lone ESC.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_control(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}'
}

/// Parameters and intermediates up to the final byte (`@` to `~`).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
    }
}

/// An OSC/DCS-style string, up to BEL or the string terminator (ESC \ or
/// U+009C).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            BEL | '\u{9c}' => return,
            ESC if chars.peek() == Some(&'\\') => {
                chars.next();
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_escapes_and_controls_but_keeps_lines() {
        let text = "\u{1b}[31;1mred\u{1b}[0m\tok\r\n\u{1b}]0;title\u{7}next\u{1b}]8;;http://x\u{1b}\\link\u{1b}c\u{8}!\u{9b}2Jz\u{7f}";
        assert_eq!(strip_controls(text), "red\tok\nnextlink!z");
        assert!(matches!(strip_controls("plain\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(strip_controls("unterminated \u{1b}[12"), "unterminated ");
    }
}
