//! Meta-prompt templates: handlebars files (strict mode, no HTML escaping) rendered from a typed
//! context. The built-in ones live in `templates/` and are compiled into the binary.

use std::marker::PhantomData;
use std::path::Path;

use handlebars::{handlebars_helper, no_escape, Handlebars};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A prompt text with its score, as the mentor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPrompt {
    /// The prompt text (a projected soft prompt or an earlier candidate).
    pub text: String,
    /// Mean cross-entropy (lower is better).
    pub loss: f64,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
}

/// Everything a meta-prompt template may reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaPromptContext {
    /// One line describing the task, from the task declaration.
    pub task_description: String,
    /// Scored prompts, sorted worst (highest loss) to best.
    pub history: Vec<ScoredPrompt>,
    /// How many candidates to ask for.
    pub num_candidates: usize,
    /// Word limit per candidate.
    pub word_limit: usize,
    /// The edit asked for, under the edit protocol ([`super::EditOp::instruction`]); empty
    /// otherwise.
    #[serde(default)]
    pub instruction: String,
}

impl MetaPromptContext {
    /// A context whose history is sorted worst → best (loss descending; ties: lower accuracy first).
    pub fn new(
        task_description: impl Into<String>,
        mut history: Vec<ScoredPrompt>,
        num_candidates: usize,
        word_limit: usize,
    ) -> Self {
        history.sort_by(|a, b| {
            b.loss
                .total_cmp(&a.loss)
                .then(a.accuracy.total_cmp(&b.accuracy))
        });
        Self {
            task_description: task_description.into(),
            history,
            num_candidates,
            word_limit,
            instruction: String::new(),
        }
    }
}

/// A handlebars template bound to its context type `C`, as declared with [`crate::template!`],
/// which checks at compile time that every variable the file references is a field of `C`.
pub struct TypedTemplate<C> {
    name: &'static str,
    source: &'static str,
    context: PhantomData<fn(&C)>,
}

impl<C> Clone for TypedTemplate<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for TypedTemplate<C> {}

impl<C> std::fmt::Debug for TypedTemplate<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedTemplate")
            .field("name", &self.name)
            .field("context", &std::any::type_name::<C>())
            .finish()
    }
}

impl<C: Serialize> TypedTemplate<C> {
    /// A template from its name and source; use [`crate::template!`], which checks the source.
    pub const fn new(name: &'static str, source: &'static str) -> Self {
        Self {
            name,
            source,
            context: PhantomData,
        }
    }

    /// The template's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The handlebars source.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The compiled template.
    pub fn compile(&self) -> Result<MetaPromptTemplate> {
        MetaPromptTemplate::from_source(self.name, self.source)
    }

    /// Renders the template with a context of its type.
    pub fn render(&self, context: &C) -> Result<String> {
        self.compile()?.render_value(context)
    }
}

/// The built-in templates, declared from `templates/` and checked against [`MetaPromptContext`].
pub const BUILTIN_TEMPLATES: &[TypedTemplate<MetaPromptContext>] = &[
    crate::template! { name: "catalyst", file: "templates/catalyst.hbs" },
    crate::template! { name: "opro", file: "templates/opro.hbs" },
    crate::template! { name: "no-trajectory", file: "templates/no-trajectory.hbs" },
    crate::template! { name: "list", file: "templates/list.hbs" },
    crate::template! { name: "edit", file: "templates/edit.hbs" },
];

/// A compiled meta-prompt template.
pub struct MetaPromptTemplate {
    name: String,
    registry: Handlebars<'static>,
}

impl std::fmt::Debug for MetaPromptTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaPromptTemplate")
            .field("name", &self.name)
            .finish()
    }
}

impl MetaPromptTemplate {
    /// A built-in template by name (`catalyst`, `opro`, `no-trajectory`).
    pub fn builtin(name: &str) -> Result<Self> {
        BUILTIN_TEMPLATES
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = BUILTIN_TEMPLATES.iter().map(|t| t.name()).collect();
                Error::config(
                    format!("template `{name}`"),
                    format!("unknown; built-in templates: {}", known.join(", ")),
                )
            })?
            .compile()
    }

    /// A template from a `.hbs` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let source =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading template", path, e))?;
        Self::from_source(&path.display().to_string(), &source)
    }

    /// A template from source text; `name` appears in errors.
    pub fn from_source(name: &str, source: &str) -> Result<Self> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(no_escape);
        registry.register_helper("fixed", Box::new(fixed_helper));
        registry.register_helper("percent", Box::new(percent_helper));
        registry
            .register_template_string(name, source)
            .map_err(|e| Error::config(format!("template `{name}`"), e.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            registry,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the meta-prompt. Strict mode: a variable the context lacks is an error naming it.
    pub fn render(&self, context: &MetaPromptContext) -> Result<String> {
        self.render_value(context)
    }

    /// Renders the template with any serializable context (strict mode, as [`Self::render`]).
    pub fn render_value<C: Serialize>(&self, context: &C) -> Result<String> {
        self.registry
            .render(&self.name, context)
            .map_err(|e| Error::config(format!("template `{}`", self.name), e.to_string()))
    }
}

handlebars_helper!(fixed_helper: |x: f64, digits: u64| {
    // `{{fixed x 3}}`: a number with a fixed number of decimals.
    format!("{x:.*}", digits.min(12) as usize)
});

handlebars_helper!(percent_helper: |x: f64| {
    // `{{percent x}}`: a fraction as a percentage with one decimal.
    format!("{:.1}", x * 100.0)
});

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MetaPromptContext {
        let p = |text: &str, loss, accuracy| ScoredPrompt {
            text: text.into(),
            loss,
            accuracy,
        };
        MetaPromptContext::new(
            "sentiment of movie reviews",
            vec![
                p("best one", 0.21, 0.9),
                p("worst one", 0.9, 0.5),
                p("middle", 0.5, 0.7),
            ],
            3,
            9,
        )
    }

    #[test]
    fn catalyst_lists_history_worst_to_best_with_three_decimals() {
        let text = MetaPromptTemplate::builtin("catalyst")
            .unwrap()
            .render(&context())
            .unwrap();
        let worst = text.find("Template: worst one").unwrap();
        let middle = text.find("Template: middle").unwrap();
        let best = text.find("Template: best one").unwrap();
        assert!(worst < middle && middle < best, "{text}");
        assert!(text.contains("Loss: 0.210\nAccuracy: 0.900"), "{text}");
        assert!(text.contains("sentiment of movie reviews"));
        assert!(text.contains("fewer than 9 words") && text.contains("give 3 templates"));
    }

    #[test]
    fn every_builtin_renders_and_only_trajectory_templates_show_history() {
        for t in BUILTIN_TEMPLATES {
            let name = &t.name();
            let text = MetaPromptTemplate::builtin(name)
                .unwrap()
                .render(&context())
                .unwrap();
            assert!(text.contains("sentiment of movie reviews"), "{name}");
            assert_eq!(
                text.contains("worst one"),
                *name != "no-trajectory",
                "{name}"
            );
        }
        let opro = MetaPromptTemplate::builtin("opro")
            .unwrap()
            .render(&context())
            .unwrap();
        assert!(opro.contains("score:\n90.0"), "{opro}");
    }

    #[test]
    fn strict_mode_names_a_missing_variable_and_text_is_not_html_escaped() {
        let t = MetaPromptTemplate::from_source("mine", "Task: {{task_descripton}}").unwrap();
        let err = t.render(&context()).unwrap_err().to_string();
        assert!(
            err.contains("mine") && err.contains("task_descripton"),
            "{err}"
        );
        let t = MetaPromptTemplate::from_source("raw", "{{task_description}}").unwrap();
        let mut c = context();
        c.task_description = "a <b> & \"c\"".into();
        assert_eq!(t.render(&c).unwrap(), "a <b> & \"c\"");
    }

    #[test]
    fn bad_templates_and_names_are_errors() {
        assert!(MetaPromptTemplate::from_source("broken", "{{#each history}}").is_err());
        let err = MetaPromptTemplate::builtin("gpt").unwrap_err().to_string();
        assert!(err.contains("gpt") && err.contains("catalyst"), "{err}");
        let err = MetaPromptTemplate::from_file(Path::new("no/such.hbs"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no/such.hbs"), "{err}");
    }
}
