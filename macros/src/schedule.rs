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
];
const MENTOR_FIELDS: &[&str] = &[
    "template",
    "candidates",
    "history",
    "sample",
    "word_limit",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
];
const BUILTIN_TEMPLATES: &[&str] = &["catalyst", "opro", "no-trajectory"];
const RESTARTS: &[&str] = &["best", "continue", "random"];

pub struct MentorDecl {
    template: (String, Span),
    candidates: (usize, Span),
    history: (usize, Span),
    sample: (usize, Span),
    word_limit: usize,
    temperature: f64,
    top_p: f64,
    max_tokens: usize,
    seed: usize,
}

pub struct ScheduleDecl {
    name: String,
    rounds: (usize, Span),
    steps_per_round: (usize, Span),
    final_steps: usize,
    restart: (String, Span),
    record_every: (usize, Span),
    mentor: Option<MentorDecl>,
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
    let mentor_block = r.block("mentor");
    let mentor = mentor_block.map(|b| {
        let m = Reader::new(cx, b, "a mentor stage", MENTOR_FIELDS);
        (
            m.string("template", Some("catalyst")),
            m.usize("candidates", Some(3)),
            m.usize("history", Some(8)),
            m.usize("sample", Some(4)),
            m.usize("word_limit", Some(12)),
            m.float("temperature", 0.7),
            m.float("top_p", 0.95),
            m.usize("max_tokens", Some(160)),
            m.usize("seed", Some(0)),
        )
    });
    let mentor = match mentor {
        Some((
            Some(template),
            Some(candidates),
            Some(history),
            Some(sample),
            Some(w),
            temperature,
            top_p,
            Some(mt),
            Some(seed),
        )) => Some(MentorDecl {
            template,
            candidates,
            history,
            sample,
            word_limit: w.0,
            temperature,
            top_p,
            max_tokens: mt.0,
            seed: seed.0,
        }),
        Some(_) => return None,
        None => None,
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
            span: block.span,
        }),
        _ => None,
    }
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
        Some(m) => {
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
            let (t, span) = &m.template;
            if t.ends_with(".hbs") {
                let roots = crate::template::crate_roots();
                if !roots.iter().any(|root| root.join(t).is_file()) {
                    err(*span, format!("template file `{t}` does not exist (paths are relative to the crate root)"));
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
        None => {
            if s.restart.0 == "best" && s.rounds.0 > 1 {
                err(
                    s.restart.1,
                    "`restart: best` needs a mentor stage to choose among".into(),
                );
            }
        }
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
        _ => quote!(::tandem::engine::Restart::Continue),
    };
    let mentor = match &s.mentor {
        None => quote!(::core::option::Option::None),
        Some(m) => {
            let template = &m.template.0;
            let (c, h, sa, w) = (m.candidates.0, m.history.0, m.sample.0, m.word_limit);
            let (t, p) = (m.temperature as f32, m.top_p as f32);
            let (mt, seed) = (m.max_tokens as u32, m.seed as u64);
            quote!(::core::option::Option::Some(::tandem::engine::MentorStage {
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
            }))
        }
    };
    Ok(quote!({
        #check
        ::tandem::engine::Schedule {
            name: ::std::string::String::from(#name),
            rounds: #rounds,
            steps_per_round: #steps,
            final_steps: #final_steps,
            mentor: #mentor,
            restart: #restart,
        }
    }))
}
