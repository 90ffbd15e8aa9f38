//! Constrained decoding: a logit mask that keeps the embedded mentor's reply to the shape of a
//! list of short prompts, one per line.
//!
//! What it masks, at every step:
//! - control tokens (chat markers such as `<|im_start|>`), except the end-of-turn token, which
//!   may end the reply at the start of a line once one line is written;
//! - tokens holding markup or code characters (`{ } [ ] < > = # | \ _ * ~ ^ @ $ %` and the
//!   backtick), a control character, a broken UTF-8 byte, or a line break inside other text;
//! - whitespace-only tokens other than line breaks, and a line break before the line has a
//!   word (a token of several breaks, as after a list item, may leave one blank line);
//! - any token that would start a word past the word limit, or make a word longer than
//!   [`MAX_WORD_CHARS`] (a line of one endless word: digits, a hash);
//! - everything after the last line's break: decoding stops there.

use serde::{Deserialize, Serialize};

use super::tokenizer::DecoderTokenizer;

/// Characters a prompt line never holds under the mask: markup, code and score signs.
pub const BANNED_CHARS: &[char] = &[
    '{', '}', '[', ']', '<', '>', '=', '#', '|', '\\', '_', '*', '~', '^', '@', '$', '%', '`',
];

/// The shape a masked reply keeps: `lines` lines of at most `words` words each. Part of the
/// request, so that a cassette keys on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineMask {
    /// Lines to write; decoding stops after the last one's line break.
    pub lines: u32,
    /// Most words per line.
    pub words: u32,
}

/// Longest word a masked line may hold, in characters (English words rarely pass 20; a run of
/// digits or a hash does).
pub const MAX_WORD_CHARS: u32 = 24;

/// What a token can do to a line, decided once per vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenClass {
    /// Never emitted under the mask.
    Banned,
    /// The end-of-turn token.
    End,
    /// Line breaks only (`\n`, or `\n\n` ending a line and leaving a blank one).
    Newline,
    /// Text without a line break.
    Text(Shape),
}

/// The words and spaces of a text token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Its first character is not whitespace (it continues a word, or starts one after a space
    /// or at the start of a line).
    pub lead: bool,
    /// Words it starts after its own whitespace.
    pub inner: u32,
    /// Its last character is whitespace.
    pub trail: bool,
    /// Characters before its first whitespace (all of them when it has none).
    pub head: u32,
    /// Characters after its last whitespace.
    pub tail: u32,
    /// Its longest run of non-whitespace characters.
    pub longest: u32,
}

impl Shape {
    fn of(chars: &[char]) -> Self {
        let runs: Vec<u32> = chars
            .split(|c| c.is_whitespace())
            .map(|run| run.len() as u32)
            .collect();
        Shape {
            lead: !chars[0].is_whitespace(),
            inner: chars
                .windows(2)
                .filter(|w| w[0].is_whitespace() && !w[1].is_whitespace())
                .count() as u32,
            trail: chars[chars.len() - 1].is_whitespace(),
            head: runs[0],
            tail: runs[runs.len() - 1],
            longest: runs.iter().copied().max().unwrap_or(0),
        }
    }

    /// Whether it holds whitespace.
    fn spaced(&self) -> bool {
        !self.lead || self.trail || self.inner > 0
    }
}

impl TokenClass {
    /// The class of a token whose decoded text is `text`; `control` for control tokens, `end`
    /// for the end-of-turn token.
    pub fn of(text: &str, control: bool, end: bool) -> Self {
        if end {
            return TokenClass::End;
        }
        if control || text.is_empty() {
            return TokenClass::Banned;
        }
        if text == "\n" || text == "\n\n" {
            return TokenClass::Newline;
        }
        let bad = |c: char| c.is_control() || c == '\u{FFFD}' || BANNED_CHARS.contains(&c);
        if text.chars().any(bad) || text.chars().all(char::is_whitespace) {
            return TokenClass::Banned;
        }
        let chars: Vec<char> = text.chars().collect();
        TokenClass::Text(Shape::of(&chars))
    }

    /// The classes of a tokenizer's whole vocabulary, by id.
    pub fn vocabulary(tokenizer: &DecoderTokenizer) -> Vec<TokenClass> {
        (0..tokenizer.vocab_size() as u32)
            .map(|id| {
                let special = tokenizer.is_special(id);
                let text = if special {
                    String::new()
                } else {
                    tokenizer.decode(&[id])
                };
                TokenClass::of(&text, special, id == tokenizer.eos())
            })
            .collect()
    }
}

/// Where a masked reply stands: the line being written and the lines done.
#[derive(Debug, Clone)]
pub struct MaskState {
    mask: LineMask,
    lines: u32,
    words: u32,
    /// Characters of the word being written (0 after a space).
    word_chars: u32,
}

impl MaskState {
    /// The start of a reply.
    pub fn new(mask: LineMask) -> Self {
        Self {
            mask,
            lines: 0,
            words: 0,
            word_chars: 0,
        }
    }

    /// Whether the reply is complete: its last line ended, or it ended on the end-of-turn token.
    pub fn done(&self) -> bool {
        self.lines >= self.mask.lines
    }

    /// Words the line being written would hold after a text token.
    fn words_after(&self, t: &Shape) -> u32 {
        self.words + t.inner + u32::from(t.lead && self.word_chars == 0)
    }

    /// Characters of the word being written after a text token.
    fn word_after(&self, t: &Shape) -> u32 {
        match (t.spaced(), t.trail) {
            (false, _) => self.word_chars + t.head,
            (true, true) => 0,
            (true, false) => t.tail,
        }
    }

    /// Whether `class` may come next.
    pub fn allows(&self, class: TokenClass) -> bool {
        if self.done() {
            return false;
        }
        match class {
            TokenClass::Banned => false,
            TokenClass::End => self.lines > 0 && self.words == 0,
            TokenClass::Newline => self.words > 0,
            TokenClass::Text(t) => {
                let continued = if t.lead { self.word_chars + t.head } else { 0 };
                self.words_after(&t) <= self.mask.words
                    && continued.max(t.longest) <= MAX_WORD_CHARS
            }
        }
    }

    /// Sets the logit of every token that may not come next to minus infinity; returns
    /// whether any token may (a vocabulary without one ends the reply). `classes` holds one
    /// class per logit; logits past it are masked too.
    pub fn apply(&self, classes: &[TokenClass], logits: &mut [f32]) -> bool {
        let mut any = false;
        for (i, l) in logits.iter_mut().enumerate() {
            if classes.get(i).is_some_and(|&c| self.allows(c)) {
                any |= !l.is_nan();
            } else {
                *l = f32::NEG_INFINITY;
            }
        }
        any
    }

    /// Takes the emitted token's class into account.
    pub fn advance(&mut self, class: TokenClass) {
        match class {
            TokenClass::Banned => {}
            TokenClass::End => self.lines = self.mask.lines,
            TokenClass::Newline => {
                self.lines += 1;
                self.words = 0;
                self.word_chars = 0;
            }
            TokenClass::Text(t) => {
                self.words = self.words_after(&t);
                self.word_chars = self.word_after(&t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::Sampler;
    use proptest::prelude::*;

    #[test]
    fn classes_of_typical_tokens() {
        assert_eq!(TokenClass::of("\n", false, false), TokenClass::Newline);
        assert_eq!(TokenClass::of("\n\n", false, false), TokenClass::Newline);
        assert_eq!(TokenClass::of("\n\n ", false, false), TokenClass::Banned);
        assert_eq!(TokenClass::of("\n\n\n", false, false), TokenClass::Banned);
        assert_eq!(
            TokenClass::of("<|im_start|>", true, false),
            TokenClass::Banned
        );
        assert_eq!(TokenClass::of("", true, true), TokenClass::End);
        assert_eq!(TokenClass::of("  ", false, false), TokenClass::Banned);
        assert_eq!(TokenClass::of(" {", false, false), TokenClass::Banned);
        assert_eq!(TokenClass::of("%", false, false), TokenClass::Banned);
        assert_eq!(TokenClass::of("\u{FFFD}", false, false), TokenClass::Banned);
        let shape = |text| match TokenClass::of(text, false, false) {
            TokenClass::Text(t) => (t.lead, t.inner, t.trail, t.head, t.tail, t.longest),
            other => panic!("{text:?} is {other:?}"),
        };
        assert_eq!(shape(" film"), (false, 1, false, 0, 4, 4));
        assert_eq!(shape("ing"), (true, 0, false, 3, 3, 3));
        assert_eq!(shape("ab cde "), (true, 1, true, 2, 0, 3));
    }

    #[test]
    fn a_line_ends_at_its_word_limit_and_the_reply_at_its_last_line() {
        let mut s = MaskState::new(LineMask { lines: 2, words: 2 });
        let word = |t: &str| TokenClass::of(t, false, false);
        // No line break, and no end, before a word.
        assert!(!s.allows(TokenClass::Newline) && !s.allows(TokenClass::End));
        s.advance(word("Good"));
        s.advance(word(" film"));
        assert!(!s.allows(word(" here")), "a third word");
        assert!(s.allows(word("s")), "the second word may go on");
        assert!(!s.allows(TokenClass::End), "end mid-line");
        s.advance(TokenClass::Newline);
        assert!(s.allows(TokenClass::End) && !s.allows(TokenClass::Newline));
        s.advance(word("Bad"));
        s.advance(TokenClass::Newline);
        assert!(s.done());
        assert!(!s.allows(word("more")));
    }

    /// A word may not run on past the longest word allowed, whether it grows token by token or
    /// comes in one token; a space starts the count again.
    #[test]
    fn a_word_stops_at_the_longest_allowed() {
        let word = |t: &str| TokenClass::of(t, false, false);
        let mut s = MaskState::new(LineMask { lines: 1, words: 3 });
        s.advance(word("result"));
        for _ in 0..(MAX_WORD_CHARS - 6) {
            assert!(s.allows(word("1")));
            s.advance(word("1"));
        }
        assert!(
            !s.allows(word("1")),
            "a word of {} characters",
            MAX_WORD_CHARS + 1
        );
        assert!(
            !s.allows(word("1 x")),
            "the run before its space is too long"
        );
        assert!(s.allows(word(" x")) && s.allows(TokenClass::Newline));
        s.advance(word(" x"));
        assert!(s.allows(word("yz")));
        let long = "a".repeat(MAX_WORD_CHARS as usize + 1);
        assert!(!MaskState::new(LineMask { lines: 1, words: 3 }).allows(word(&format!(" {long}"))));
    }

    /// Token texts of a made-up vocabulary: words with and without a leading space, markup,
    /// line breaks, whitespace and broken bytes.
    fn token_text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[ ]?[a-zA-Z]{1,6}",
            1 => "[ ]?[a-z]{1,3} [a-z]{1,3}[ ]?",
            1 => "[{}<>=#_*%`\\[\\]|]",
            1 => "\n|\n\n|\n\n\n|\r\n| \n|\t|  ",
            1 => Just("\u{FFFD}".to_string()),
            1 => "[.,!?'\"-]",
            1 => "[0-9]{4,9}",
        ]
    }

    proptest! {
        /// Sampling from any logits under the mask never emits a banned token, writes at most
        /// the lines asked for, no blank line but one after a written line, and no line over the
        /// word limit.
        #[test]
        fn the_mask_never_emits_a_banned_token(
            texts in prop::collection::vec(token_text(), 8..60),
            logits in prop::collection::vec(prop::collection::vec(-8.0f32..8.0, 62), 1..80),
            lines in 1u32..4, words in 1u32..6, seed in 0u64..1000,
        ) {
            let n = texts.len();
            let mut classes: Vec<TokenClass> =
                texts.iter().map(|t| TokenClass::of(t, false, false)).collect();
            // A control token and the end-of-turn token, as a chat vocabulary has.
            classes.push(TokenClass::of("<|im_start|>", true, false));
            classes.push(TokenClass::End);
            let mask = LineMask { lines, words };
            let mut state = MaskState::new(mask);
            let mut sampler = Sampler::new(1.0, 0.95, seed);
            let mut out = String::new();
            for step in &logits {
                if state.done() {
                    break;
                }
                let mut l = step[..n + 2].to_vec();
                if !state.apply(&classes, &mut l) {
                    // Nothing this vocabulary holds may come next: the reply ends.
                    prop_assert!(classes.iter().all(|&c| !state.allows(c)));
                    break;
                }
                let id = sampler.sample(&l) as usize;
                let class = classes[id];
                prop_assert!(state.allows(class), "emitted {:?} ({:?})", texts.get(id), class);
                prop_assert!(class != TokenClass::Banned);
                state.advance(class);
                if let Some(t) = texts.get(id) {
                    out.push_str(t);
                }
            }
            // Blank lines come only after a written line, one at a time.
            prop_assert!(!out.starts_with('\n') && !out.contains("\n\n\n"), "{out:?}");
            let written: Vec<&str> = out.split('\n').filter(|l| !l.is_empty()).collect();
            prop_assert!(written.len() as u32 <= lines, "{out:?}");
            for line in &written {
                prop_assert!(line.split_whitespace().count() as u32 <= words, "{line:?}");
                let longest = line.split_whitespace().map(|w| w.chars().count()).max();
                prop_assert!(longest.unwrap_or(0) as u32 <= MAX_WORD_CHARS, "{line:?}");
                prop_assert!(!line.contains(BANNED_CHARS), "{line:?}");
            }
        }
    }
}
