//! `name: value` fields inside braces, with the span of every name and value kept for errors.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, parenthesized, Ident, Lit, Token};

use crate::ctxt::Ctxt;

/// A field value: a literal, a bare word, a word with settings (`name { … }`), a call
/// (`name("path", key: value, …)`), a list of literals, or a nested block of fields.
pub enum Value {
    Lit(Lit),
    Word(Ident),
    Tagged(Ident, Fields),
    /// `word(literal, key: value, …)`: the literal argument, if any, and the named ones.
    Call(Ident, Option<Lit>, Fields),
    Type(Box<syn::Type>),
    List(Vec<Lit>, Span),
    Block(Fields),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Lit(l) => l.span(),
            Value::Word(w) => w.span(),
            Value::Tagged(w, _) => w.span(),
            Value::Call(w, _, _) => w.span(),
            Value::Type(t) => syn::spanned::Spanned::span(t),
            Value::List(_, span) => *span,
            Value::Block(b) => b.span,
        }
    }
}

pub struct Field {
    pub name: Ident,
    pub value: Value,
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let value = if input.peek(syn::token::Brace) {
            let content;
            let brace = braced!(content in input);
            let mut inner = Fields::parse_body(&content)?;
            inner.span = brace.span.join();
            Value::Block(inner)
        } else if input.peek(syn::token::Bracket) {
            let content;
            let bracket = syn::bracketed!(content in input);
            let items: Punctuated<Lit, Token![,]> = Punctuated::parse_terminated(&content)?;
            Value::List(items.into_iter().collect(), bracket.span.join())
        } else if input.peek(Lit) {
            Value::Lit(input.parse()?)
        } else if input.peek(Token![::])
            || (input.peek(Ident) && (input.peek2(Token![::]) || input.peek2(Token![<])))
        {
            Value::Type(Box::new(input.parse()?))
        } else if input.peek(Ident::peek_any) {
            // Keywords such as `continue` are words here.
            let word = Ident::parse_any(input)?;
            if input.peek(syn::token::Brace) {
                let content;
                let brace = braced!(content in input);
                let mut inner = Fields::parse_body(&content)?;
                inner.span = brace.span.join();
                Value::Tagged(word, inner)
            } else if input.peek(syn::token::Paren) {
                let content;
                let paren = parenthesized!(content in input);
                let arg = if content.peek(Lit) {
                    let lit: Lit = content.parse()?;
                    if !content.is_empty() {
                        content.parse::<Token![,]>()?;
                    }
                    Some(lit)
                } else {
                    None
                };
                let mut inner = Fields::parse_body(&content)?;
                inner.span = paren.span.join();
                Value::Call(word, arg, inner)
            } else {
                Value::Word(word)
            }
        } else {
            return Err(
                input.error("expected a value: a number, a string, a word, `[ … ]` or `{ … }`")
            );
        };
        Ok(Field { name, value })
    }
}

pub struct Fields {
    pub fields: Vec<Field>,
    pub span: Span,
}

impl Fields {
    pub fn parse_body(input: ParseStream) -> syn::Result<Self> {
        let list: Punctuated<Field, Token![,]> = Punctuated::parse_terminated(input)?;
        Ok(Fields {
            fields: list.into_iter().collect(),
            span: Span::call_site(),
        })
    }

    pub fn parse_tokens(tokens: TokenStream) -> syn::Result<Self> {
        syn::parse::Parser::parse2(Self::parse_body, tokens)
    }
}

/// Reads typed fields out of a block; every error goes to the shared [`Ctxt`].
pub struct Reader<'a> {
    cx: &'a Ctxt,
    block: &'a Fields,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reports unknown and repeated field names at once.
    pub fn new(
        cx: &'a Ctxt,
        block: &'a Fields,
        what: &'static str,
        known: &'static [&'static str],
    ) -> Self {
        let r = Reader { cx, block, what };
        let mut seen: Vec<String> = Vec::new();
        for f in &block.fields {
            let n = f.name.to_string();
            if !known.contains(&n.as_str()) {
                r.error(
                    f.name.span(),
                    format!(
                        "unknown field `{n}` of {what}; expected one of: {}",
                        known.join(", ")
                    ),
                );
            } else if seen.contains(&n) {
                r.error(f.name.span(), format!("field `{n}` is given twice"));
            }
            seen.push(n);
        }
        r
    }

    pub fn error(&self, span: Span, msg: impl std::fmt::Display) {
        self.cx.error(span, msg);
    }

    /// The span of the whole block, for missing fields and defaults.
    pub fn span(&self) -> Span {
        self.block.span
    }

    pub fn get(&self, name: &str) -> Option<&'a Field> {
        self.block.fields.iter().find(|f| f.name == name)
    }

    fn missing(&self, name: &str) {
        let span = self.block.span;
        let what = self.what;
        self.error(span, format!("missing field `{name}` of {what}"));
    }

    pub fn usize(&self, name: &str, default: Option<usize>) -> Option<(usize, Span)> {
        match self.get(name) {
            None => {
                if default.is_none() {
                    self.missing(name);
                }
                default.map(|d| (d, self.block.span))
            }
            Some(f) => match &f.value {
                Value::Lit(Lit::Int(i)) => match i.base10_parse::<usize>() {
                    Ok(v) => Some((v, i.span())),
                    Err(e) => {
                        self.error(i.span(), e);
                        None
                    }
                },
                v => {
                    self.error(v.span(), format!("`{name}` must be a whole number"));
                    None
                }
            },
        }
    }

    /// `true` or `false`.
    pub fn bool(&self, name: &str, default: bool) -> bool {
        match self.get(name).map(|f| &f.value) {
            None => default,
            Some(Value::Lit(Lit::Bool(b))) => b.value,
            Some(v) => {
                self.error(v.span(), format!("`{name}` must be `true` or `false`"));
                default
            }
        }
    }

    pub fn float(&self, name: &str, default: f64) -> f64 {
        self.float_at(name, default).0
    }

    /// A number and the span of its literal (the block's span when defaulted).
    pub fn float_at(&self, name: &str, default: f64) -> (f64, Span) {
        match self.get(name) {
            None => (default, self.block.span),
            Some(f) => match &f.value {
                Value::Lit(Lit::Float(x)) => (x.base10_parse().unwrap_or(default), x.span()),
                Value::Lit(Lit::Int(x)) => (x.base10_parse().unwrap_or(default), x.span()),
                v => {
                    self.error(v.span(), format!("`{name}` must be a number"));
                    (default, v.span())
                }
            },
        }
    }

    pub fn string(&self, name: &str, default: Option<&str>) -> Option<(String, Span)> {
        match self.get(name) {
            None => {
                if default.is_none() {
                    self.missing(name);
                }
                default.map(|d| (d.to_string(), self.block.span))
            }
            Some(f) => match &f.value {
                Value::Lit(Lit::Str(s)) => Some((s.value(), s.span())),
                v => {
                    self.error(v.span(), format!("`{name}` must be a string literal"));
                    None
                }
            },
        }
    }

    /// A word from `allowed` (no settings block).
    pub fn word(
        &self,
        name: &str,
        allowed: &[&str],
        default: Option<&str>,
    ) -> Option<(String, Span)> {
        let (word, span, settings) = self.variant(name, allowed, default)?;
        if let Some(b) = settings {
            self.error(b.span, format!("`{name}` takes no settings"));
            return None;
        }
        Some((word, span))
    }

    /// A list of numbers, `[0.7, 1]` (empty when the field is absent).
    pub fn floats(&self, name: &str) -> Vec<(f64, Span)> {
        let Some(f) = self.get(name) else {
            return Vec::new();
        };
        let Value::List(items, _) = &f.value else {
            self.error(
                f.value.span(),
                format!("`{name}` must be a list of numbers `[…, …]`"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Lit::Float(x) => out.push((x.base10_parse().unwrap_or(f64::NAN), x.span())),
                Lit::Int(x) => out.push((x.base10_parse().unwrap_or(f64::NAN), x.span())),
                other => self.error(other.span(), format!("`{name}` must list numbers")),
            }
        }
        out
    }

    /// A list of string literals, `[ "a", "b" ]`.
    pub fn strings(&self, name: &str) -> Option<(Vec<(String, Span)>, Span)> {
        match self.get(name) {
            None => {
                self.missing(name);
                None
            }
            Some(f) => match &f.value {
                Value::List(items, span) => {
                    let mut out = Vec::new();
                    for item in items {
                        match item {
                            Lit::Str(s) => out.push((s.value(), s.span())),
                            other => self
                                .error(other.span(), format!("`{name}` must list string literals")),
                        }
                    }
                    Some((out, *span))
                }
                v => {
                    self.error(
                        v.span(),
                        format!("`{name}` must be a list of strings `[\"…\", …]`"),
                    );
                    None
                }
            },
        }
    }

    /// A word from `allowed`, optionally followed by its settings block (`word { … }`).
    pub fn variant(
        &self,
        name: &str,
        allowed: &[&str],
        default: Option<&str>,
    ) -> Option<(String, Span, Option<&'a Fields>)> {
        match self.get(name) {
            None => {
                if default.is_none() {
                    self.missing(name);
                }
                default.map(|d| (d.to_string(), self.block.span, None))
            }
            Some(f) => {
                let (word, settings) = match &f.value {
                    Value::Word(w) => (w, None),
                    Value::Tagged(w, b) => (w, Some(b)),
                    v => {
                        self.error(
                            v.span(),
                            format!("`{name}` must be one of: {}", allowed.join(", ")),
                        );
                        return None;
                    }
                };
                if allowed.contains(&word.to_string().as_str()) {
                    Some((word.to_string(), word.span(), settings))
                } else {
                    self.error(
                        word.span(),
                        format!("`{name}` must be one of: {}", allowed.join(", ")),
                    );
                    None
                }
            }
        }
    }

    pub fn block(&self, name: &str) -> Option<&'a Fields> {
        match self.get(name) {
            None => None,
            Some(f) => match &f.value {
                Value::Block(b) => Some(b),
                v => {
                    self.error(v.span(), format!("`{name}` must be a block `{{ … }}`"));
                    None
                }
            },
        }
    }
}
