//! `schedule!`: parse → validate → expand.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::ctxt::Ctxt;
use crate::fields::{Fields, Reader};

const FIELDS: &[&str] = &[
    "name",
    "rounds",
    "steps_per_round",
    "final_steps",
    "restart",
    "record_every",
    "mentor",
    "probe",
];
const MENTOR_FIELDS: &[&str] = &[
    "protocol",
    "template",
    "candidates",
    "history",
    "sample",
    "word_limit",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "shuffle_scores",
    "mask",
    "calls",
    "temperatures",
    "fit",
];
const PROBE_FIELDS: &[&str] = &[
    "steps",
    "keep",
    "rungs",
    "arms",
    "proposals",
    "margin",
    "screen",
];
const SCREEN_FIELDS: &[&str] = &["candidates", "examples"];
/// Most candidates a round may ask for or screen (the library's `MAX_CANDIDATES`).
const MAX_CANDIDATES: usize = 32;
const ARMS: &[&str] = &["mentor", "random", "projected", "restart"];
const BUILTIN_TEMPLATES: &[&str] = &["catalyst", "opro", "no-trajectory", "list", "edit"];
const PROTOCOLS: &[&str] = &["instruction", "list", "edit"];
const RESTARTS: &[&str] = &["best", "continue", "random", "probe", "reference"];

pub struct MentorDecl {
    protocol: (String, Span),
    template: (String, Span),
    candidates: (usize, Span),
    history: (usize, Span),
    sample: (usize, Span),
    word_limit: usize,
    temperature: f64,
    top_p: f64,
    max_tokens: usize,
    seed: usize,
    shuffle_scores: bool,
    mask: bool,
    calls: (usize, Span),
    temperatures: Vec<(f64, Span)>,
    fit: bool,
}

pub struct ProbeDecl {
    steps: usize,
    keep: (f64, Span),
    rungs: (usize, Span),
    arms: (String, Span),
    proposals: (usize, Span),
    margin: (f64, Span),
    /// Screened candidates and examples as written, with their spans (a field left out takes
    /// the library's `Screen::default()`).
    screen: Option<ScreenDecl>,
}

pub struct ScreenDecl {
    candidates: Option<(usize, Span)>,
    examples: Option<(usize, Span)>,
}

pub struct ScheduleDecl {
    name: String,
    rounds: (usize, Span),
    steps_per_round: (usize, Span),
    final_steps: usize,
    restart: (String, Span),
    record_every: (usize, Span),
    mentor: Option<MentorDecl>,
    probe: Option<ProbeDecl>,
    span: Span,
}

/// Reads the declaration, reporting every malformed or missing field into `cx`; `None` when
/// something was reported.
pub fn parse(cx: &Ctxt, tokens: TokenStream) -> Option<ScheduleDecl> {
    let block = Fields::parse_tokens(tokens)
        .map_err(|e| cx.syn_error(e))
        .ok()?;
    let r = Reader::new(cx, &block, "a schedule", FIELDS);
    let name = r.string("name", None);
    let rounds = r.usize("rounds", None);
    let steps = r.usize("steps_per_round", None);
    let final_steps = r.usize("final_steps", Some(0));
    let restart = r.word("restart", RESTARTS, None);
    let record_every = r.usize("record_every", Some(5));
    let mentor = r.block("mentor").map(|b| parse_mentor(cx, b));
    let probe = r.block("probe").map(|b| parse_probe(cx, b));
    let (mentor, probe) = match (mentor, probe) {
        (Some(None), _) | (_, Some(None)) => return None,
        (m, p) => (m.flatten(), p.flatten()),
    };
    match (name, rounds, steps, final_steps, restart, record_every) {
        (
            Some(name),
            Some(rounds),
            Some(steps_per_round),
            Some(final_steps),
            Some(restart),
            Some(record_every),
        ) => Some(ScheduleDecl {
            name: name.0,
            rounds,
            steps_per_round,
            final_steps: final_steps.0,
            restart,
            record_every,
            mentor,
            probe,
            span: block.span,
        }),
        _ => None,
    }
}

/// The `mentor: { … }` block; `None` when something was reported.
fn parse_mentor(cx: &Ctxt, b: &Fields) -> Option<MentorDecl> {
    let m = Reader::new(cx, b, "a mentor stage", MENTOR_FIELDS);
    let protocol = m.word("protocol", PROTOCOLS, Some("instruction"));
    let template = m.string("template", Some("catalyst"));
    let candidates = m.usize("candidates", Some(3));
    let history = m.usize("history", Some(8));
    let sample = m.usize("sample", Some(4));
    let word_limit = m.usize("word_limit", Some(12));
    let temperature = m.float("temperature", 0.7);
    let top_p = m.float("top_p", 0.95);
    let max_tokens = m.usize("max_tokens", Some(160));
    let seed = m.usize("seed", Some(0));
    let shuffle_scores = m.bool("shuffle_scores", false);
    let mask = m.bool("mask", false);
    let calls = m.usize("calls", Some(1));
    let temperatures = m.floats("temperatures");
    let fit = m.bool("fit", false);
    Some(MentorDecl {
        protocol: protocol?,
        template: template?,
        candidates: candidates?,
        history: history?,
        sample: sample?,
        word_limit: word_limit?.0,
        temperature,
        top_p,
        max_tokens: max_tokens?.0,
        seed: seed?.0,
        shuffle_scores,
        mask,
        calls: calls?,
        temperatures,
        fit,
    })
}

/// The `probe: { … }` block; `None` when something was reported.
fn parse_probe(cx: &Ctxt, b: &Fields) -> Option<ProbeDecl> {
    let p = Reader::new(cx, b, "a probe", PROBE_FIELDS);
    let steps = p.usize("steps", Some(1));
    let keep = p.float_at("keep", 0.5);
    let rungs = p.usize("rungs", Some(2));
    let arms = p.word("arms", ARMS, Some("mentor"));
    let proposals = p.usize("proposals", Some(3));
    let margin = p.float_at("margin", 0.0);
    let screen = match p.block("screen") {
        None => None,
        Some(b) => {
            let r = Reader::new(cx, b, "a screen", SCREEN_FIELDS);
            let read = |name| match r.get(name) {
                None => Some(None),
                Some(_) => r.usize(name, None).map(Some),
            };
            let (candidates, examples) = (read("candidates"), read("examples"));
            Some(ScreenDecl {
                candidates: candidates?,
                examples: examples?,
            })
        }
    };
    Some(ProbeDecl {
        steps: steps?.0,
        keep,
        rungs: rungs?,
        arms: arms?,
        proposals: proposals?,
        margin,
        screen,
    })
}

/// Checks that the schedule can run; each error points at the field responsible.
pub fn validate(cx: &Ctxt, s: &ScheduleDecl) {
    let err = |span: Span, msg: String| cx.error(span, msg);
    if s.rounds.0 == 0 {
        err(s.rounds.1, "a schedule needs at least one round".into());
    }
    if s.record_every.0 == 0 {
        err(s.record_every.1, "`record_every` must be at least 1".into());
    }
    if s.rounds.0 * s.steps_per_round.0 + s.final_steps == 0 {
        err(
            s.span,
            "the schedule takes no gradient step: set `steps_per_round` or `final_steps`".into(),
        );
    }
    match &s.mentor {
        Some(m) => validate_mentor(cx, s, m),
        None => {
            if s.restart.0 == "best" && s.rounds.0 > 1 {
                err(
                    s.restart.1,
                    "`restart: best` needs a mentor stage to choose among".into(),
                );
            }
            if s.restart.0 == "reference" {
                err(
                    s.restart.1,
                    "`restart: reference` takes the mentor's first candidate: it needs a mentor stage".into(),
                );
            }
        }
    }
    validate_probe(cx, s);
}

/// The mentor stage's counts, sampling and template.
fn validate_mentor(cx: &Ctxt, s: &ScheduleDecl, m: &MentorDecl) {
    let err = |span: Span, msg: String| cx.error(span, msg);
    if m.candidates.0 == 0 {
        err(
            m.candidates.1,
            "a mentor stage must ask for at least one candidate".into(),
        );
    }
    if m.history.0 == 0 {
        err(
            m.history.1,
            "the mentor must be shown at least one scored prompt".into(),
        );
    }
    let points = s.steps_per_round.0 / s.record_every.0.max(1);
    if s.steps_per_round.0 > 0 && m.sample.0 > points {
        err(
            m.sample.1,
            format!(
                "{} trajectory points asked of a round that records {points} ({} steps, one point every {})",
                m.sample.0, s.steps_per_round.0, s.record_every.0
            ),
        );
    }
    if m.calls.0 == 0 || m.calls.0 * m.candidates.0 > MAX_CANDIDATES {
        err(
            m.calls.1,
            format!(
                "{} calls of {} candidates: between 1 call and {MAX_CANDIDATES} candidates a round",
                m.calls.0, m.candidates.0
            ),
        );
    }
    for (t, span) in &m.temperatures {
        if !(t.is_finite() && *t >= 0.0) {
            err(*span, format!("{t} is not a temperature ≥ 0"));
        }
    }
    let (t, span) = &m.template;
    if t.ends_with(".hbs") {
        let roots = crate::template::crate_roots();
        if !roots.iter().any(|root| root.join(t).is_file()) {
            err(
                *span,
                format!(
                    "template file `{t}` does not exist (paths are relative to the crate root)"
                ),
            );
        }
        // Whether its variables are fields of the context is checked by the expansion.
    } else if !BUILTIN_TEMPLATES.contains(&t.as_str()) {
        err(
            *span,
            format!(
                "unknown template `{t}`; built-in: {}, or a `.hbs` file",
                BUILTIN_TEMPLATES.join(", ")
            ),
        );
    }
}

/// The probe's ranges, and the restart and mentor stage it needs.
fn validate_probe(cx: &Ctxt, s: &ScheduleDecl) {
    let Some(p) = &s.probe else {
        if s.restart.0 == "probe" {
            cx.error(
                s.restart.1,
                "`restart: probe` needs a `probe: { … }` section",
            );
        }
        return;
    };
    if s.restart.0 != "probe" {
        cx.error(
            s.restart.1,
            "a schedule with a probe restarts from its winner: `restart: probe`",
        );
    }
    if !(p.keep.0 > 0.0 && p.keep.0 <= 1.0) {
        cx.error(p.keep.1, format!("`keep` is {}: not in (0, 1]", p.keep.0));
    }
    if p.rungs.0 == 0 {
        cx.error(p.rungs.1, "a probe needs at least one rung");
    }
    if p.proposals.0 == 0 {
        cx.error(
            p.proposals.1,
            "a probe needs at least one proposal arm beside the continuous prompt",
        );
    }
    if p.margin.0 < 0.0 {
        cx.error(p.margin.1, "`margin` must be ≥ 0");
    }
    let screen = p.screen.as_ref();
    if let Some((candidates, span)) = screen.and_then(|s| s.candidates) {
        if !(p.proposals.0..=MAX_CANDIDATES).contains(&candidates) {
            cx.error(
                span,
                format!(
                    "the screen's {candidates} candidates are not between the probe's {} proposals and {MAX_CANDIDATES}",
                    p.proposals.0
                ),
            );
        }
    }
    if let Some((0, span)) = screen.and_then(|s| s.examples) {
        cx.error(span, "a screen needs at least one example");
    }
    if p.arms.0 == "mentor" && s.mentor.is_none() {
        cx.error(
            p.arms.1,
            "`arms: mentor` needs a `mentor: { … }` stage (or arms from random, projected, restart)",
        );
    }
}

/// The `tandem::engine::Schedule` value; a `.hbs` template's variables are checked against
/// `MetaPromptContext` by a function in the same block.
pub fn expand(s: &ScheduleDecl) -> syn::Result<TokenStream> {
    let check = match &s.mentor {
        Some(MentorDecl {
            template: (t, span),
            ..
        }) if t.ends_with(".hbs") => {
            let (abs, source) = crate::template::read(t, *span)?;
            let context = quote!(::tandem::mentor::MetaPromptContext);
            let checker = crate::template::checker(t, &source, &context, *span)?;
            quote!(#checker const _: &str = ::core::include_str!(#abs);)
        }
        _ => TokenStream::new(),
    };
    let name = &s.name;
    let (rounds, steps, final_steps) = (s.rounds.0, s.steps_per_round.0, s.final_steps);
    let restart = match s.restart.0.as_str() {
        "best" => quote!(::tandem::engine::Restart::Best),
        "random" => quote!(::tandem::engine::Restart::Random),
        "probe" => quote!(::tandem::engine::Restart::Probe),
        "reference" => quote!(::tandem::engine::Restart::Reference),
        _ => quote!(::tandem::engine::Restart::Continue),
    };
    let mentor = match &s.mentor {
        None => quote!(::core::option::Option::None),
        Some(m) => {
            let template = &m.template.0;
            let (c, h, sa, w) = (m.candidates.0, m.history.0, m.sample.0, m.word_limit);
            let (t, p) = (m.temperature as f32, m.top_p as f32);
            let (mt, seed) = (m.max_tokens as u32, m.seed as u64);
            let shuffle = m.shuffle_scores;
            let (mask, fit, calls) = (m.mask, m.fit, m.calls.0);
            let temperatures = m.temperatures.iter().map(|(t, _)| *t as f32);
            let protocol = match m.protocol.0.as_str() {
                "list" => quote!(::tandem::mentor::Protocol::List),
                "edit" => quote!(::tandem::mentor::Protocol::Edit),
                _ => quote!(::tandem::mentor::Protocol::Instruction),
            };
            quote!(::core::option::Option::Some(::tandem::engine::MentorStage {
                protocol: #protocol,
                template: ::std::string::String::from(#template),
                candidates: #c,
                history: #h,
                sample: #sa,
                word_limit: #w,
                sampling: ::tandem::mentor::Sampling {
                    temperature: #t,
                    top_p: #p,
                    max_tokens: #mt,
                    stop: ::std::vec::Vec::new(),
                    seed: #seed,
                },
                shuffle_scores: #shuffle,
                mask: #mask,
                calls: #calls,
                temperatures: ::std::vec![#(#temperatures),*],
                fit: #fit,
            }))
        }
    };
    let probe = expand_probe(s.probe.as_ref());
    Ok(quote!({
        #check
        ::tandem::engine::Schedule {
            name: ::std::string::String::from(#name),
            rounds: #rounds,
            steps_per_round: #steps,
            final_steps: #final_steps,
            mentor: #mentor,
            restart: #restart,
            probe: #probe,
        }
    }))
}

/// The `Option<tandem::engine::Probe>` value.
fn expand_probe(p: Option<&ProbeDecl>) -> TokenStream {
    let Some(p) = p else {
        return quote!(::core::option::Option::None);
    };
    let (steps, keep, rungs) = (p.steps, p.keep.0, p.rungs.0);
    let (proposals, margin) = (p.proposals.0, p.margin.0);
    let arms = match p.arms.0.as_str() {
        "random" => quote!(::tandem::engine::ArmSource::Random),
        "projected" => quote!(::tandem::engine::ArmSource::Projected),
        "restart" => quote!(::tandem::engine::ArmSource::Restart),
        _ => quote!(::tandem::engine::ArmSource::Mentor),
    };
    let screen = match &p.screen {
        None => quote!(::core::option::Option::None),
        Some(s) => {
            let field = |name: &str, v: Option<(usize, Span)>| {
                let name = quote::format_ident!("{name}");
                v.map(|(v, _)| quote!(#name: #v,))
            };
            let candidates = field("candidates", s.candidates);
            let examples = field("examples", s.examples);
            let rest = (s.candidates.is_none() || s.examples.is_none())
                .then(|| quote!(..::core::default::Default::default()));
            quote!(::core::option::Option::Some(::tandem::engine::Screen {
                #candidates
                #examples
                #rest
            }))
        }
    };
    quote!(::core::option::Option::Some(::tandem::engine::Probe {
        steps: #steps,
        keep: #keep,
        rungs: #rungs,
        arms: #arms,
        proposals: #proposals,
        margin: #margin,
        screen: #screen,
    }))
}
