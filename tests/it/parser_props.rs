//! Property tests of the mentor-reply parser: total over arbitrary UTF-8 and adversarial replies.
//! Failures shrink to minimal cases, persisted in `proptest-regressions/parser_props.txt`.

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use tandem::mentor::{parse_reply, DropReason, ParserConfig};

fn check(reply: &str, k: usize) {
    let cfg = ParserConfig {
        max_candidates: k,
        ..Default::default()
    };
    let p = parse_reply(reply, &cfg);
    assert!(
        p.candidates.len() <= k,
        "{} candidates > K = {k}",
        p.candidates.len()
    );
    for c in &p.candidates {
        assert!(!c.is_empty() && c.trim() == c, "untrimmed candidate {c:?}");
        assert!(c.chars().count() >= cfg.min_chars, "short candidate {c:?}");
        assert!(
            !c.chars().any(|ch| ch.is_control()
                || matches!(
                    ch,
                    '\u{feff}' | '\u{200b}' | '\u{2060}' | '\u{00ad}' | '\u{2028}' | '\u{2029}'
                )),
            "control or invisible character in candidate {c:?}"
        );
    }
    let lower: Vec<String> = p.candidates.iter().map(|c| c.to_lowercase()).collect();
    for (i, c) in lower.iter().enumerate() {
        assert!(!lower[..i].contains(c), "duplicate candidate {c:?}");
    }
    // Every non-blank line is accounted for, once; a JSON array's line may hold several
    // elements.
    let nonblank = reply.lines().filter(|l| !l.trim().is_empty()).count();
    let accounted = p.candidates.len() + p.dropped.len();
    if reply.contains(['[', '{']) {
        assert!(
            accounted >= nonblank,
            "{accounted} pieces < {nonblank} lines"
        );
    } else {
        assert_eq!(accounted, nonblank, "every non-blank line is accounted for");
    }
    let lines = reply.lines().count();
    assert!(p.dropped.iter().all(|d| (1..=lines).contains(&d.line_no)));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // The same cases on every run.
        rng_seed: RngSeed::Fixed(0x9a25_e001),
        // Beside `invariants.txt`; proptest's default would put it in `tests/proptest-regressions/`
        // (beside the `main.rs` of this test crate).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/parser_props.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Any string: control and format characters (line breaks, `\r`, ESC, BOM, zero-width
    /// space) included.
    #[test]
    fn total_over_arbitrary_utf8(s in any::<String>(), k in 0usize..6) {
        check(&s, k);
    }

    #[test]
    fn total_over_reply_shaped_text(
        lines in prop::collection::vec(
            prop_oneof![
                "[0-9]{1,3}[.):] ?[\"'“«*]{0,3}[a-zA-Z ,éü]{0,40}[\"'”»*]{0,3}",
                "[-*•] [a-z ]{0,30}",
                "```[a-z]{0,8}",
                "(Here are|Sure|Templates?)[a-z ]{0,20}:?",
                "[\"'“”‘’«»`*_]{0,8}",
                "</?think>[a-z ]{0,20}(</think>)?",
                "(Loss|Accuracy|Score): ?-?[0-9]\\.[0-9]{1,3},?",
                "\\*\\*[0-9]{1,2}[.):]\\*\\* [a-z ]{0,30}",
                "(I'm sorry|I cannot|As an AI)[a-z ,]{0,30}",
                "\u{1b}\\[[0-9;]{0,4}m[a-z ]{0,20}[\\\\]?[ntr\"]?",
                "\\PC{0,20}",
                "[\u{feff}\u{200b}\u{2060}\u{00ad}\r\t\u{1b}\u{0}\u{2028}]{0,3}[0-9]?[.)]? ?[a-z ]{0,20}[\u{feff}\u{200b}\r\u{7f}]{0,2}[a-z]{0,8}",
                "[{]?(\"prompts\": )?\\[ ?(\"[a-z \\\\\"]{0,20}\",? ?){0,3}\\]?[}]?",
            ],
            0..40,
        ),
        k in 0usize..6,
    ) {
        check(&lines.join("\n"), k);
    }

    /// A shown prompt, however its case and spacing are changed, is never a candidate, and
    /// every other line of the reply is judged as without it.
    #[test]
    fn shown_prompts_never_come_back_as_candidates(
        shown in prop::collection::vec("[a-z]{1,6}( [a-z]{1,6}){0,4}", 1..5),
        picks in prop::collection::vec((0usize..5, any::<bool>(), 1usize..3), 0..8),
        others in prop::collection::vec("[a-z]{1,6}( [a-z]{1,6}){1,4}", 0..8),
    ) {
        let mut lines: Vec<String> = picks
            .iter()
            .map(|&(i, upper, gap)| {
                let text = shown[i % shown.len()].replace(' ', &" ".repeat(gap));
                if upper { text.to_uppercase() } else { text }
            })
            .collect();
        lines.extend(others.iter().cloned());
        let reply = lines.join("\n");
        let with = ParserConfig { max_candidates: 20, shown: shown.clone(), ..Default::default() };
        let without = ParserConfig { shown: Vec::new(), ..with.clone() };
        let fold = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let folded: Vec<String> = shown.iter().map(|s| fold(s)).collect();
        let p = parse_reply(&reply, &with);
        for c in &p.candidates {
            prop_assert!(!folded.contains(&fold(c)), "copy {c:?} kept");
        }
        // Line by line against the same reply parsed without the shown prompts: a copy is a
        // `Copy` exactly where it would have been a candidate or a duplicate of one; every
        // other line is judged the same.
        let q = parse_reply(&reply, &without);
        let reason = |r: &tandem::mentor::ParsedReply, n: usize| {
            r.dropped.iter().find(|d| d.line_no == n).map(|d| d.reason.clone())
        };
        for (i, line) in lines.iter().enumerate() {
            let (n, was) = (i + 1, reason(&q, i + 1));
            if folded.contains(&fold(line)) {
                let usable = matches!(was, None | Some(DropReason::Duplicate));
                prop_assert_eq!(usable, reason(&p, n) == Some(DropReason::Copy), "line {}", n);
            } else {
                prop_assert_eq!(reason(&p, n), was, "line {}", n);
            }
        }
    }
}

#[test]
fn adversarial_replies() {
    let huge = "1. a very long prompt line ".repeat(50_000);
    check(&huge, 3);
    check(&"1.\n".repeat(10_000), 3);
    check(&"\"".repeat(10_001), 3);
    check("\"'“«**“nested quotes”**»'\"", 3);
    check("```\n```\n```", 3);
    check("\r\n\r\n1)\r\n", 3);
    let p = parse_reply("\"'«**“nested quotes here”**»'\"", &ParserConfig::default());
    assert_eq!(p.candidates, ["nested quotes here"]);
    // Reasoning blocks, echoed scores and refusals never become candidates.
    check(&"<think>\n".repeat(1000), 3);
    check("</think></think><think><think>", 3);
    let p = parse_reply(
        "<think>1. inside</think>\nLoss: 0.905,\nAccuracy: 1.000\nI'm sorry, I can't.\n1. kept prompt",
        &ParserConfig::default(),
    );
    assert_eq!(p.candidates, ["kept prompt"]);
    check(&format!("[{}\"a\"]", "[".repeat(200)), 3);
    check(
        &format!("{}\"deep\"{}", "[".repeat(10_000), "]".repeat(10_000)),
        3,
    );
    check(&"[\"a\",\n".repeat(2_000), 3);
    let many: Vec<String> = (0..20_000).map(|i| format!("\"prompt {i}\"")).collect();
    let p = parse_reply(
        &format!("[\n{}\n]", many.join(",\n")),
        &ParserConfig::default(),
    );
    assert_eq!(p.candidates, ["prompt 0", "prompt 1", "prompt 2"]);
    assert_eq!(p.dropped.last().map(|d| d.line_no), Some(20_002));
    let p = parse_reply("```\n```", &ParserConfig::default());
    assert!(p.dropped.iter().all(|d| d.reason == DropReason::CodeFence));
}
