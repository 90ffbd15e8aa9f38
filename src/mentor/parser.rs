//! The total parser of a mentor's reply: any UTF-8 text in, at most K candidate prompts out, plus
//! every line it dropped and why. It never panics and never slices inside a character.

use serde::{Deserialize, Serialize};

/// Limits applied while parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParserConfig {
    /// At most this many candidates are returned (K).
    pub max_candidates: usize,
    /// Candidates shorter than this many characters are dropped.
    pub min_chars: usize,
    /// Candidates with more words than this are dropped (`None`: no limit).
    pub max_words: Option<usize>,
    /// The prompts the meta-prompt showed: a candidate equal to one of them (ignoring case and
    /// spacing) is a copy, not a proposal.
    pub shown: Vec<String>,
    /// The reply was cut by its token limit (finish reason `length`): its last line stopped
    /// mid-way and is dropped as `cut`.
    pub cut: bool,
}

impl Default for ParserConfig {
    fn default() -> Self {
        Self {
            max_candidates: 3,
            min_chars: 3,
            max_words: Some(30),
            shown: Vec::new(),
            cut: false,
        }
    }
}

/// Why a line of the reply is not a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// Nothing left after stripping markers and quotes.
    Empty,
    /// A code-fence line (```` ``` ```` or `~~~`); the fenced lines themselves are parsed.
    CodeFence,
    /// An introduction or closing remark ("Here are three templates:").
    Preamble,
    /// Shorter than the minimum length.
    TooShort,
    /// More words than the limit.
    TooLong {
        /// Its word count.
        words: usize,
    },
    /// The same text (ignoring case) as an earlier candidate.
    Duplicate,
    /// A link, image or URL rather than prompt text.
    NotText,
    /// A valid candidate beyond the first K.
    OverLimit,
    /// Inside a reasoning block (`<think>…</think>`) of a reasoning model.
    Reasoning,
    /// An echo of the meta-prompt's own score labels ("Loss: 0.512", "Accuracy: 0.780").
    EchoedScore,
    /// A refusal or apology ("I'm sorry, but I can't …").
    Refusal,
    /// A line of a JSON array's brackets or keys (its elements are parsed).
    JsonSyntax,
    /// Source code rather than prose: an import, a definition, an assignment, a call, or a line
    /// that ends on an opening bracket ("import numpy as np", `output = ""`, "This is the code: [").
    Code,
    /// A bare structure label that introduces what follows ("Options:", "Example 2:").
    Header,
    /// A question about the optimisation rather than a prompt ("Question: What type of patterns
    /// can make a template's loss low?").
    Question,
    /// The same text (ignoring case and spacing) as a prompt the meta-prompt showed.
    Copy,
    /// The last line of a reply the token limit cut off mid-way.
    Cut,
}

impl DropReason {
    /// Whether the line was on the task but not usable (too long, a copy, cut off, over the limit),
    /// rather than something other than a prompt (chatter, code, an echo, a heading).
    pub fn is_on_task(&self) -> bool {
        matches!(
            self,
            DropReason::TooLong { .. }
                | DropReason::Duplicate
                | DropReason::OverLimit
                | DropReason::Copy
                | DropReason::Cut
        )
    }
}

/// A dropped line and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// 1-based line number in the reply (0: a candidate dropped after parsing, as a copy of
    /// one an earlier call of the round gave).
    pub line_no: usize,
    /// The line as it appeared (trimmed).
    pub text: String,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// The parse of one reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParsedReply {
    /// Candidate prompts, in reply order, at most K.
    pub candidates: Vec<String>,
    /// Every non-blank line that did not become a candidate.
    pub dropped: Vec<Dropped>,
}

/// Parses a reply. Total: any input gives a result.
pub fn parse_reply(reply: &str, config: &ParserConfig) -> ParsedReply {
    let pieces = reply_lines(reply);
    // The last piece with text, when the token limit cut the reply there.
    let cut_at = config
        .cut
        .then(|| pieces.iter().rposition(|p| !p.text.trim().is_empty()))
        .flatten();
    let mut judge = Judge {
        config,
        out: ParsedReply::default(),
        seen: Vec::new(),
        thinking: false,
    };
    for (i, piece) in pieces.iter().enumerate() {
        let line = piece.text.trim();
        if line.is_empty() && piece.kind == PieceKind::Line {
            continue;
        }
        match judge.verdict(piece, line, cut_at == Some(i)) {
            Ok(text) => {
                judge.seen.push(text.to_lowercase());
                judge.out.candidates.push(text);
            }
            Err(reason) => judge.out.dropped.push(Dropped {
                line_no: piece.line_no,
                text: line.to_string(),
                reason,
            }),
        }
    }
    judge.out
}

/// The parse so far: what was kept and dropped, the kept texts (lowercased) and whether a
/// reasoning block is open.
struct Judge<'a> {
    config: &'a ParserConfig,
    out: ParsedReply,
    seen: Vec<String>,
    thinking: bool,
}

impl Judge<'_> {
    /// The cleaned candidate a non-blank piece gives, or why it gives none.
    fn verdict(&mut self, piece: &Piece, line: &str, cut: bool) -> Result<String, DropReason> {
        if cut {
            return Err(DropReason::Cut);
        }
        if piece.kind == PieceKind::Syntax {
            return Err(DropReason::JsonSyntax);
        }
        if line.is_empty() {
            // An empty element of a JSON array.
            return Err(DropReason::Empty);
        }
        // A reasoning block: its lines are dropped; text beside it on its line is kept.
        let line = reasoning_split(line, &mut self.thinking).unwrap_or(line);
        if line.is_empty() {
            return Err(DropReason::Reasoning);
        }
        if line.starts_with("```") || line.starts_with("~~~") {
            return Err(DropReason::CodeFence);
        }
        let text = clean(line);
        if is_refusal(&text) {
            return Err(DropReason::Refusal);
        }
        if opens_like_preamble(line) || is_heading(&text) {
            return Err(DropReason::Preamble);
        }
        if let Some(reason) = off_task(&text) {
            return Err(reason);
        }
        match self.text_reason(&text) {
            Some(reason) => Err(reason),
            None => Ok(text),
        }
    }

    /// Why a cleaned text is not a candidate: no letters, an echo, a link, its length, a
    /// duplicate, a copy, or the limit reached.
    fn text_reason(&self, text: &str) -> Option<DropReason> {
        let c = self.config;
        let chars = text.chars().count();
        let words = text.split_whitespace().count();
        if !text.chars().any(char::is_alphanumeric) {
            Some(DropReason::Empty)
        } else if echoes_score(text) {
            Some(DropReason::EchoedScore)
        } else if text.starts_with("![") || text.contains("://") {
            Some(DropReason::NotText)
        } else if chars < c.min_chars {
            Some(DropReason::TooShort)
        } else if c.max_words.is_some_and(|m| words > m) {
            Some(DropReason::TooLong { words })
        } else if self.seen.iter().any(|s| s == &text.to_lowercase()) {
            Some(DropReason::Duplicate)
        } else if c.shown.iter().any(|s| same_text(s, text)) {
            Some(DropReason::Copy)
        } else if self.out.candidates.len() >= c.max_candidates {
            Some(DropReason::OverLimit)
        } else {
            None
        }
    }
}

/// A piece of a reply the parser judges: a line, or an element of a JSON array in the reply.
struct Piece {
    /// 1-based number of the line it is on (starts on, for an element).
    line_no: usize,
    text: String,
    kind: PieceKind,
}

#[derive(Clone, Copy, PartialEq)]
enum PieceKind {
    /// A line of the reply (or the text beside a JSON array on its line).
    Line,
    /// An element of a JSON array.
    Element,
    /// A line of a JSON array's brackets and keys, holding no element.
    Syntax,
}

/// The reply's lines with their 1-based numbers; a JSON array of strings in the reply (`["a",
/// "b"]`, or an object's array field, `{"prompts": [...]}`, on one line or many, fenced or not)
/// stands for its elements, each numbered by the line it starts on. Every non-blank line gives
/// at least one piece.
fn reply_lines(reply: &str) -> Vec<Piece> {
    let newlines: Vec<usize> = reply.match_indices('\n').map(|(i, _)| i).collect();
    let line_of = |at: usize| 1 + newlines.partition_point(|&n| n < at);
    let piece = |line_no, text: &str, kind| Piece {
        line_no,
        text: text.to_string(),
        kind,
    };
    let plain = |from: usize, to: usize| {
        let first = line_of(from);
        reply[from..to]
            .lines()
            .enumerate()
            .map(move |(i, l)| piece(first + i, l, PieceKind::Line))
    };
    let Some((start, end, strings)) = json_strings(reply) else {
        return plain(0, reply.len()).collect();
    };
    // The array's own lines give its elements; text before and after it on its first and last
    // lines, and the lines around it, are lines.
    let (span_start, span_end) = (line_start(reply, start), line_end(reply, end));
    let (before, after) = (&reply[span_start..start], &reply[end..span_end]);
    let mut elements = Vec::new();
    let mut cursor = start;
    for text in strings {
        let literal = serde_json::to_string(&text).unwrap_or_default();
        let at = reply[cursor..end].find(&literal).map(|i| cursor + i);
        elements.push(piece(
            line_of(at.unwrap_or(cursor)),
            &text,
            PieceKind::Element,
        ));
        cursor = at.map_or(cursor, |at| at + literal.len());
    }
    let mut pieces: Vec<_> = plain(0, span_start).collect();
    if !before.trim().is_empty() {
        pieces.push(piece(line_of(start), before, PieceKind::Line));
    }
    let (first, last) = (line_of(start), line_of(end));
    let element_lines: std::collections::BTreeSet<usize> =
        elements.iter().map(|e| e.line_no).collect();
    for (i, line) in reply[span_start..span_end].lines().enumerate() {
        let no = first + i;
        let beside =
            (no == first && !before.trim().is_empty()) || (no == last && !after.trim().is_empty());
        if !line.trim().is_empty() && !beside && !element_lines.contains(&no) {
            pieces.push(piece(no, line, PieceKind::Syntax));
        }
    }
    pieces.extend(elements);
    if !after.trim().is_empty() {
        pieces.push(piece(last, after, PieceKind::Line));
    }
    pieces.extend(plain(span_end, reply.len()));
    pieces.sort_by_key(|p| p.line_no);
    pieces
}

/// Where a JSON array or object may start: `[` and the opening brace (written as an escape so
/// that the source's braces stay balanced for line-counting tools).
const JSON_OPENERS: [char; 2] = ['[', '\u{7b}'];

/// The first JSON array of at least one string, all strings, in `reply` (or the first such
/// array field of a JSON object), with the byte span of the value it was read from.
fn json_strings(reply: &str) -> Option<(usize, usize, Vec<String>)> {
    for (start, _) in reply.match_indices(JSON_OPENERS).take(16) {
        let mut values = serde_json::Deserializer::from_str(&reply[start..]).into_iter();
        let Some(Ok(value)) = values.next() else {
            continue;
        };
        let end = start + values.byte_offset();
        let array = match &value {
            serde_json::Value::Object(fields) => fields.values().find_map(all_strings),
            v => all_strings(v),
        };
        if let Some(strings) = array {
            return Some((start, end, strings));
        }
    }
    None
}

/// The elements of `v` when it is a non-empty array of strings.
fn all_strings(v: &serde_json::Value) -> Option<Vec<String>> {
    let items = v.as_array().filter(|a| !a.is_empty())?;
    items
        .iter()
        .map(|i| i.as_str().map(str::to_string))
        .collect()
}

/// The byte where the line holding byte `at` starts.
fn line_start(s: &str, at: usize) -> usize {
    s[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The byte where the line holding byte `at` ends (its newline, or the end).
fn line_end(s: &str, at: usize) -> usize {
    s[at..].find('\n').map_or(s.len(), |i| at + i)
}

/// What is left of `line` outside a `<think>…</think>` block, tracking whether the block is
/// open across lines; `None` when the line has no part of a block.
fn reasoning_split<'a>(line: &'a str, thinking: &mut bool) -> Option<&'a str> {
    let lower = line.to_ascii_lowercase();
    if *thinking {
        return Some(match lower.find("</think>") {
            Some(end) => {
                *thinking = false;
                line[end + "</think>".len()..].trim()
            }
            None => "",
        });
    }
    let start = lower.find("<think>")?;
    match lower[start..].find("</think>") {
        // One line: the block is cut out, what surrounds it stays.
        Some(len) => {
            let after = &line[start + len + "</think>".len()..];
            Some(if start == 0 {
                after.trim()
            } else {
                line[..start].trim()
            })
        }
        None => {
            *thinking = true;
            Some(line[..start].trim())
        }
    }
}

/// "I'm sorry, but I can't …", "As an AI language model …": judged on the cleaned text.
fn is_refusal(text: &str) -> bool {
    let lower = text.to_lowercase().replace('’', "'");
    [
        "i'm sorry",
        "i am sorry",
        "sorry, but",
        "i apologize",
        "i can't",
        "i cannot",
        "i can not",
        "i'm unable",
        "i am unable",
        "i won't",
        "as an ai",
        "unfortunately, i",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// A line that reports a score the way the meta-prompt shows them: a score word followed by a
/// number ("Loss: 0.512", "accuracy = 78%", "Score 0.9"), anywhere in the line, or a line
/// that opens with the list's score label, whatever follows it ("Accuracy: overkill").
fn echoes_score(text: &str) -> bool {
    let lower = text.to_lowercase();
    let labelled = ["loss", "accuracy", "score"].iter().any(|label| {
        lower
            .strip_prefix(label)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    });
    labelled
        || ["loss", "accuracy", "score", "acc", "f1", "mcc"]
            .iter()
            .any(|label| {
                lower.match_indices(label).any(|(at, _)| {
                    let before_ok = lower[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_alphanumeric());
                    let rest = lower[at + label.len()..].trim_start_matches([' ', ':', '=', '(']);
                    before_ok
                        && rest
                            .trim_start_matches('-')
                            .starts_with(|c: char| c.is_ascii_digit() || c == '.')
                })
            })
}

/// Code, a bare label or a question about the optimisation: judged on the cleaned text.
fn off_task(text: &str) -> Option<DropReason> {
    if is_code(text) {
        Some(DropReason::Code)
    } else if is_header(text) {
        Some(DropReason::Header)
    } else if is_meta_question(text) {
        Some(DropReason::Question)
    } else {
        None
    }
}

/// "import numpy as np", "from a import b", `output = ""`, `print("x")`, "def f(x):", a line
/// ending in `;`, `{` or `}`, or on an opening bracket ("This is the code: [").
fn is_code(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_ident = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !w.starts_with(|c: char| c.is_ascii_digit())
    };
    let import = match words.as_slice() {
        ["import", module, ..] => is_ident(module.trim_end_matches(',')),
        ["from", module, "import", ..] => is_ident(module),
        _ => false,
    };
    // "def f(x):", "fn main() {", "class Foo(Base):", "class Foo:".
    let definition = match words.as_slice() {
        ["def" | "fn" | "function", name, ..] => name.contains('('),
        ["class", name] => name.ends_with(':') || name.contains('('),
        _ => false,
    };
    // A call opening the line: an identifier glued to its parenthesis.
    let call = words.first().is_some_and(|w| {
        w.split_once('(')
            .is_some_and(|(name, _)| is_ident(name) && text.ends_with([')', ';', ':']))
    });
    let assignment = words.len() >= 3
        && is_ident(words[0].trim_end_matches(['[', ']']))
        && ["=", "+=", "-=", ":="].contains(&words[1]);
    let ending = text.ends_with([';', '{', '}', '[', '(']);
    import || definition || call || assignment || ending
}

/// Labels that introduce a part of a document rather than being a prompt.
const HEADER_LABELS: &[&str] = &[
    "options",
    "choices",
    "question",
    "questions",
    "answer",
    "answers",
    "input",
    "inputs",
    "output",
    "outputs",
    "example",
    "examples",
    "note",
    "notes",
    "code",
    "result",
    "results",
    "explanation",
    "solution",
    "step",
    "steps",
    "context",
    "instruction",
    "instructions",
    "requirement",
    "requirements",
    "response",
    "responses",
    "summary",
    "hint",
    "hints",
];

/// "Options:", "Example 2:" — a structure label, optionally numbered, and its colon alone.
fn is_header(text: &str) -> bool {
    let Some(head) = text.strip_suffix(':') else {
        return false;
    };
    let lower = head.to_lowercase();
    let mut words = lower.split_whitespace();
    let label = words.next().is_some_and(|w| HEADER_LABELS.contains(&w));
    let rest: Vec<&str> = words.collect();
    label && (rest.is_empty() || (rest.len() == 1 && rest[0].chars().all(|c| c.is_ascii_digit())))
}

/// A question labelled as one ("Question: …", "Q: …") or one about the optimisation itself
/// (it asks about templates, prompts, losses, scores or patterns).
fn is_meta_question(text: &str) -> bool {
    let lower = text.to_lowercase();
    if ["question:", "q:"].iter().any(|l| lower.starts_with(l)) {
        return true;
    }
    lower.ends_with('?')
        && lower.split(|c: char| !c.is_alphanumeric()).any(|w| {
            [
                "template",
                "templates",
                "prompt",
                "prompts",
                "loss",
                "score",
                "scores",
                "pattern",
                "patterns",
            ]
            .contains(&w)
        })
}

/// Equal ignoring case and the spacing between words.
fn same_text(a: &str, b: &str) -> bool {
    let fold = |s: &str| {
        s.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    fold(a) == fold(b)
}

/// Words that open an introduction or a closing remark rather than a prompt.
const PREAMBLE_OPENERS: &[&str] = &[
    "here are",
    "here is",
    "here's",
    "sure",
    "certainly",
    "of course",
    "okay",
    "ok,",
    "i hope",
    "i'm ",
    "i am ",
    "let me",
    "these templates",
    "these prompts",
    "the following",
    "below are",
    "new templates",
    "new prompts",
];

/// "Sure! Here are three templates", "I hope these help." — judged on the raw line.
fn opens_like_preamble(line: &str) -> bool {
    let lower = line.to_lowercase();
    let stripped = lower.trim_start_matches(|c: char| !c.is_alphanumeric());
    let opens = |p: &&str| {
        stripped.starts_with(*p) && !stripped[p.len()..].starts_with(|c: char| c.is_alphanumeric())
    };
    PREAMBLE_OPENERS.iter().any(opens)
}

/// "New prompts (lower loss):" — a heading that ends in a colon; judged on the cleaned text, so
/// that a label such as "Template 2:" before a real prompt does not make it a heading.
fn is_heading(text: &str) -> bool {
    let lower = text.to_lowercase();
    let trimmed = lower.trim_end_matches(['*', ' ']);
    trimmed.ends_with(':')
        && [
            "template",
            "prompt",
            "candidate",
            "suggestion",
            "answer",
            "output",
        ]
        .iter()
        .any(|w| trimmed.contains(w))
}

/// Strips list markers, labels, emphasis and quotes, repeatedly, and folds white space.
fn clean(line: &str) -> String {
    let mut s = strip_controls(line).trim().to_string();
    // Each pass removes at least one character or stops, so this ends.
    loop {
        let before = s.len();
        s = strip_marker(&s).trim().to_string();
        s = strip_emphasis(&s).trim().to_string();
        s = strip_quotes(&s).trim().to_string();
        if s.len() == before {
            break;
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes ANSI escape sequences (`ESC [ … letter`), other control characters, zero-width
/// characters and literal backslash escapes (`\n`, `\t`, `\"`) that a model copied from a JSON string.
fn strip_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC '[' parameters… final byte in '@'..='~'.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for f in chars.by_ref() {
                        if ('@'..='~').contains(&f) {
                            break;
                        }
                    }
                }
            }
            '\\' => match chars.peek() {
                Some('n' | 't' | 'r') => {
                    chars.next();
                    out.push(' ');
                }
                Some('"' | '\'') => out.extend(chars.next()),
                _ => out.push(c),
            },
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(' '),
            c if is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Zero-width characters a reply can carry unseen (byte-order mark, zero-width space, word
/// joiner, soft hyphen): dropped, so that a candidate reads as it looks and deduplicates so.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{feff}' | '\u{200b}' | '\u{2060}' | '\u{00ad}')
}

/// Removes one leading bullet, number ("1.", "10)", "(3)", "#2", "2:") or label ("Template 1:").
fn strip_marker(s: &str) -> &str {
    for bullet in ["- ", "* ", "• ", "+ ", "– ", "— ", "> "] {
        if let Some(rest) = s.strip_prefix(bullet) {
            return rest;
        }
    }
    // "**1.** text", "__2)__ text", "*3:* text": emphasis around the number only.
    for m in ["**", "__", "*", "_"] {
        if let Some(rest) = s.strip_prefix(m) {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                let after = &rest[digits..];
                for sep in [".", ")", ":"] {
                    if let Some(tail) = after.strip_prefix(sep).and_then(|t| t.strip_prefix(m)) {
                        return tail;
                    }
                }
            }
        }
    }
    // "(3)" or "[3]"
    for (open, close) in [('(', ')'), ('[', ']')] {
        if let Some(rest) = s.strip_prefix(open) {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                if let Some(after) = rest[digits..].strip_prefix(close) {
                    return after;
                }
            }
        }
    }
    let body = s.strip_prefix('#').unwrap_or(s);
    let digits = body.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        let rest = &body[digits..];
        for sep in [".", ")", ":", " -", "-"] {
            if let Some(after) = rest.strip_prefix(sep) {
                return after;
            }
        }
        if rest.is_empty() {
            return "";
        }
    }
    // "Template 1:", "Prompt 2 -", "Candidate:"
    let lower = s.to_lowercase();
    for label in [
        "template",
        "prompt",
        "candidate",
        "new template",
        "new prompt",
    ] {
        if lower.starts_with(label) {
            if let Some(colon) = s.find(':') {
                let head = &s[..colon];
                if head.split_whitespace().count() <= 3 {
                    return &s[colon + 1..];
                }
            }
        }
    }
    s
}

/// Removes markdown emphasis wrapping the whole text (`**x**`, `*x*`, `_x_`, `` `x` ``).
fn strip_emphasis(s: &str) -> &str {
    // The suffix is taken from what the prefix leaves, so a lone marker never wraps itself.
    for m in ["**", "__", "*", "_", "`"] {
        if let Some(inner) = s.strip_prefix(m).and_then(|r| r.strip_suffix(m)) {
            return inner;
        }
    }
    s
}

/// Removes one pair of matching quotes around the whole text.
fn strip_quotes(s: &str) -> &str {
    const PAIRS: &[(char, char)] = &[
        ('"', '"'),
        ('\'', '\''),
        ('“', '”'),
        ('‘', '’'),
        ('«', '»'),
        ('„', '“'),
        ('「', '」'),
    ];
    for &(open, close) in PAIRS {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return inner;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ParsedReply {
        parse_reply(s, &ParserConfig::default())
    }

    /// `parse` keeping up to `k` candidates.
    fn parse_up_to(s: &str, k: usize) -> ParsedReply {
        parse_reply(
            s,
            &ParserConfig {
                max_candidates: k,
                ..ParserConfig::default()
            },
        )
    }

    #[test]
    fn drops_links_and_images() {
        let p = parse_reply(
            "![](https://i.example/x.png)\nSee https://example.com\nA calm review of the film",
            &ParserConfig::default(),
        );
        assert_eq!(p.candidates, vec!["A calm review of the film"]);
        assert!(p.dropped.iter().all(|d| d.reason == DropReason::NotText));
        assert_eq!(p.dropped.len(), 2);
    }

    #[test]
    fn strips_numbering_bullets_quotes_and_preambles() {
        let reply = "Sure! Here are three new templates:\n\n1. \"A review that feels\"\n10) 'The critic thinks it is'\n- **This film was**\n";
        let p = parse(reply);
        assert_eq!(
            p.candidates,
            [
                "A review that feels",
                "The critic thinks it is",
                "This film was"
            ]
        );
        assert_eq!(p.dropped.len(), 1);
        assert_eq!(p.dropped[0].reason, DropReason::Preamble);
    }

    #[test]
    fn code_fences_are_dropped_and_their_content_parsed() {
        let p = parse("```\nTemplate 1: the movie is\nTemplate 2: my verdict:\n```");
        assert_eq!(p.candidates, ["the movie is", "my verdict:"]);
        assert_eq!(
            p.dropped.iter().map(|d| &d.reason).collect::<Vec<_>>(),
            [&DropReason::CodeFence, &DropReason::CodeFence]
        );
    }

    /// What the cleaner removes inside a line: control characters become spaces, zero-width
    /// characters vanish; a score word glued to a preceding word is no echo, one after a space
    /// is; a class declaration is code; a label and a word that is not a number is no header; a
    /// heading of prompts is a preamble; text after an array and before the next line is a
    /// line of its own.
    #[test]
    fn cleaning_and_judging_inside_a_line() {
        assert_eq!(parse("the film\u{7}is").candidates, ["the film is"]);
        assert_eq!(parse("the\u{200b} film is").candidates, ["the film is"]);
        assert_eq!(
            parse("Rescore 3 reviews by tone").candidates,
            ["Rescore 3 reviews by tone"]
        );
        let reason = |line: &str| parse(line).dropped.first().map(|d| d.reason.clone());
        assert_eq!(reason("the loss 0.5 here"), Some(DropReason::EchoedScore));
        assert_eq!(reason("class Review:"), Some(DropReason::Code));
        assert_eq!(parse("Note sentiment:").candidates, ["Note sentiment:"]);
        assert_eq!(reason("Example 2:"), Some(DropReason::Header));
        assert_eq!(reason("Improved templates:"), Some(DropReason::Preamble));
        // A label's number may be any character: the cut is after the colon's byte.
        assert_eq!(parse("Template ①: the film is").candidates, ["the film is"]);
        assert_eq!(parse("*").dropped[0].reason, DropReason::Empty);
        assert_eq!(parse("**").dropped[0].reason, DropReason::Empty);
        let p =
            parse("[\"Rate the review\", \"Judge the tone\"] I hope these help!\nJudge the mood");
        assert_eq!(
            p.candidates,
            ["Rate the review", "Judge the tone", "Judge the mood"]
        );
        let lines: Vec<_> = p
            .dropped
            .iter()
            .map(|d| (d.line_no, d.text.trim()))
            .collect();
        assert_eq!(lines, [(1, "I hope these help!")]);
    }

    #[test]
    fn short_long_duplicate_and_over_limit_lines_are_reported() {
        let cfg = ParserConfig {
            max_candidates: 2,
            min_chars: 3,
            max_words: Some(4),
            ..ParserConfig::default()
        };
        let p = parse_reply(
            "a\n1.\none two three four five\nGood film\ngood FILM\nbad film\nfine film",
            &cfg,
        );
        assert_eq!(p.candidates, ["Good film", "bad film"]);
        let reasons: Vec<_> = p.dropped.iter().map(|d| d.reason.clone()).collect();
        assert_eq!(
            reasons,
            [
                DropReason::TooShort,
                DropReason::Empty,
                DropReason::TooLong { words: 5 },
                DropReason::Duplicate,
                DropReason::OverLimit
            ]
        );
        assert_eq!(p.dropped[3].line_no, 5);
        // The limits are inclusive: exactly `min_chars` characters or `max_words` words is kept.
        let p = parse_reply(
            "abc\none two three four\nab",
            &ParserConfig {
                max_candidates: 5,
                ..cfg
            },
        );
        assert_eq!(p.candidates, ["abc", "one two three four"]);
        assert_eq!(p.dropped.len(), 1);
        assert_eq!(p.dropped[0].reason, DropReason::TooShort);
    }

    /// Lines a small model wrote behind llama.cpp's server (issue 21), each dropped with its
    /// reason, beside prompts that look a little like them and are kept.
    #[test]
    fn code_headers_and_questions_about_the_task_are_not_prompts() {
        let reply = "import numpy as np\n\
                     output = \"\"\n\
                     This is the code: [\n\
                     Options:\n\
                     Question: What type of patterns can make a template's loss low?\n\
                     Which template gives the lowest loss?\n\
                     from sklearn.metrics import f1_score\n\
                     print(\"positive\")\n\
                     def classify(review):\n\
                     class Review(Base):\n\
                     total += 1;\n\
                     Example 2:\n\
                     Is this review positive or negative?\n\
                     Sentiment:\n\
                     The critic's verdict (positive or negative) is\n\
                     Classify the review(s) by their tone\n\
                     Import the mood of the snippet\n\
                     class of this review:";
        let p = parse_up_to(reply, 10);
        assert_eq!(
            p.candidates,
            [
                "Is this review positive or negative?",
                "Sentiment:",
                "The critic's verdict (positive or negative) is",
                "Classify the review(s) by their tone",
                "Import the mood of the snippet",
                "class of this review:",
            ]
        );
        let reasons: Vec<_> = p
            .dropped
            .iter()
            .map(|d| (d.line_no, d.reason.clone()))
            .collect();
        use DropReason::{Code, Header, Question};
        assert_eq!(
            reasons,
            [
                (1, Code),
                (2, Code),
                (3, Code),
                (4, Header),
                (5, Question),
                (6, Question),
                (7, Code),
                (8, Code),
                (9, Code),
                (10, Code),
                (11, Code),
                (12, Header),
            ]
        );
        assert!(reasons.iter().all(|(_, r)| !r.is_on_task()));
    }

    #[test]
    fn the_last_line_of_a_cut_reply_is_dropped() {
        let reply = "1. the film is\n2. a calm review\n\n3. the movie is gre\n\n";
        let cut = ParserConfig {
            cut: true,
            ..ParserConfig::default()
        };
        let p = parse_reply(reply, &cut);
        assert_eq!(p.candidates, ["the film is", "a calm review"]);
        assert_eq!(
            (p.dropped.len(), p.dropped[0].line_no, &p.dropped[0].reason),
            (1, 4, &DropReason::Cut)
        );
        assert!(DropReason::Cut.is_on_task());
        // A whole reply is kept when it ended by itself.
        assert_eq!(
            parse_reply(reply, &ParserConfig::default())
                .candidates
                .len(),
            3
        );
        // In a JSON array, the last element is the one cut.
        let p = parse_reply("[\"a calm review\", \"the film is\"]", &cut);
        assert_eq!(p.candidates, ["a calm review"]);
        assert_eq!(p.dropped[0].reason, DropReason::Cut);
        assert!(parse_reply("", &cut).dropped.is_empty());
    }

    #[test]
    fn copies_of_the_shown_prompts_are_dropped_and_on_the_task() {
        let cfg = ParserConfig {
            shown: vec!["the movie is".into(), "A calm  review".into()],
            ..ParserConfig::default()
        };
        let p = parse_reply(
            "1. The Movie is\n2. a calm review\n3. the movie is great",
            &cfg,
        );
        assert_eq!(p.candidates, ["the movie is great"]);
        assert_eq!(
            p.dropped.iter().map(|d| &d.reason).collect::<Vec<_>>(),
            [&DropReason::Copy, &DropReason::Copy]
        );
        assert!(p.dropped.iter().all(|d| d.reason.is_on_task()));
        assert!(DropReason::TooLong { words: 40 }.is_on_task());
        assert!(!DropReason::Preamble.is_on_task());
    }

    #[test]
    fn no_valid_line_gives_no_candidate_not_a_crash() {
        assert!(parse("").candidates.is_empty());
        assert!(parse("1.\n2.\n3)\n-\n\"\"\n''").candidates.is_empty());
        assert!(parse("é").candidates.is_empty());
        assert!(parse("«»\n“”\n**").candidates.is_empty());
    }

    #[test]
    fn a_prompt_that_merely_starts_like_a_preamble_word_is_kept() {
        let p = parse("Surely a great film\nOkayish movie overall");
        assert_eq!(
            p.candidates,
            ["Surely a great film", "Okayish movie overall"]
        );
    }

    /// Replies seen from real models (issue 13): each line dropped with its reason, or cleaned.
    #[test]
    fn json_arrays_of_strings_stand_for_their_elements() {
        let fenced = "Here are the prompts:\n```json\n[\n  \"Rate the review\",\n  \
                      \"Is this review positive?\"\n]\n```\nI hope these help!";
        let p = parse(fenced);
        assert_eq!(
            p.candidates,
            ["Rate the review", "Is this review positive?"]
        );
        let lines: Vec<_> = p.dropped.iter().map(|d| (d.line_no, &d.reason)).collect();
        assert_eq!(
            lines,
            [
                (1, &DropReason::Preamble),
                (2, &DropReason::CodeFence),
                (3, &DropReason::JsonSyntax),
                (6, &DropReason::JsonSyntax),
                (7, &DropReason::CodeFence),
                (8, &DropReason::Preamble)
            ]
        );
        // One line, an object's field, escapes decoded, the lines after it parsed as lines.
        let p = parse(
            "{\"prompts\": [\"Say \\\"yes\\\" or no\", \"Judge the tone\"]}\n\
             Judge the mood of the text",
        );
        assert_eq!(
            p.candidates,
            [
                "Say \"yes\" or no",
                "Judge the tone",
                "Judge the mood of the text"
            ]
        );
        // Text beside a multi-line array on its first and last lines is a line of its own;
        // the bracket lines it shares give no syntax piece.
        let p =
            parse("Prompts: [\n  \"Rate the review\",\n  \"Judge the tone\"\n] I hope these help!");
        assert_eq!(p.candidates, ["Rate the review", "Judge the tone"]);
        let lines: Vec<_> = p
            .dropped
            .iter()
            .map(|d| (d.line_no, d.text.trim()))
            .collect();
        assert_eq!(lines, [(1, "Prompts:"), (4, "I hope these help!")]);
        assert!(p.dropped.iter().all(|d| d.reason != DropReason::JsonSyntax));
        // Arrays of other things, and brackets in prose, are lines as before.
        let p = parse("[3] Classify [the review] by its tone\n[\"a\", 2]");
        assert_eq!(
            p.candidates,
            ["Classify [the review] by its tone", "[\"a\", 2]"]
        );
    }

    #[test]
    fn reasoning_scores_refusals_controls_and_stubs() {
        let reply = "<think>\nThe user wants prompts.\n1. not this one\n</think>\n\
                     1. what the review says about the film\n\
                     Loss: 0.512\n\
                     2. Accuracy: 0.780\n\
                     I'm sorry, but I can't help with that.\n\
                     **3.** the reviewer's overall feeling\n\
                     4.\n\
                     5. **\n\
                     \u{1b}[1mthe tone of this review\u{1b}[0m\n\
                     the mood\\n of the text \\\"here\\\"";
        let p = parse_up_to(reply, 8);
        assert_eq!(
            p.candidates,
            [
                "what the review says about the film",
                "the reviewer's overall feeling",
                "the tone of this review",
                "the mood of the text \"here\"",
            ]
        );
        let reasons: Vec<&DropReason> = p.dropped.iter().map(|d| &d.reason).collect();
        assert_eq!(
            reasons,
            [
                &DropReason::Reasoning,
                &DropReason::Reasoning,
                &DropReason::Reasoning,
                &DropReason::Reasoning,
                &DropReason::EchoedScore,
                &DropReason::EchoedScore,
                &DropReason::Refusal,
                &DropReason::Empty,
                &DropReason::Empty,
            ]
        );
        // One-line blocks are cut out; an unclosed block runs to the end.
        let p = parse(
            "<think>hmm</think> a prompt after thinking\n<think>never closed\nstill thinking",
        );
        assert_eq!(p.candidates, ["a prompt after thinking"]);
        assert!(p.dropped.iter().all(|d| d.reason == DropReason::Reasoning));
        // A score word inside a real prompt is kept when no number follows it.
        assert_eq!(
            parse("reduce the loss of meaning").candidates,
            ["reduce the loss of meaning"]
        );
        // The list's own score label opens an echo whatever follows it (seen from SmolLM2
        // under the mask, which bans the digits' percent sign); inside a prompt it does not.
        for echo in [
            "Accuracy: overkill",
            "accuracy : this movie review is",
            "Loss: high",
        ] {
            let p = parse(echo);
            assert!(p.candidates.is_empty(), "{echo:?} kept");
            assert_eq!(p.dropped[0].reason, DropReason::EchoedScore, "{echo:?}");
        }
        assert_eq!(
            parse("The accuracy: is it positive").candidates,
            ["The accuracy: is it positive"]
        );
    }
}
