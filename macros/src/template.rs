//! `template!`: a handlebars file bound to a typed context. The file is parsed at compile time
//! and every variable it references becomes a field access on the context type, so a variable
//! the context lacks is a type error at the file's literal.

use handlebars::template::{
    BlockParam, HelperTemplate, Parameter, Template, TemplateElement, TemplateMapping,
};
use handlebars::{Path, PathSeg};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::ctxt::Ctxt;
use crate::fields::{Fields, Reader, Value};

const FIELDS: &[&str] = &["name", "file", "context"];
/// Helpers a meta-prompt template may call: tandem's (`fixed`, `percent`) and handlebars'
/// built-in expression helpers.
const HELPERS: &[&str] = &[
    "fixed", "percent", "lookup", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not",
    "len",
];

pub struct TemplateDecl {
    name: (String, Span),
    file: (String, Span),
    context: TokenStream,
}

/// Reads the declaration, reporting every malformed or missing field into `cx`.
pub fn parse(cx: &Ctxt, tokens: TokenStream) -> Option<TemplateDecl> {
    let block = Fields::parse_tokens(tokens)
        .map_err(|e| cx.syn_error(e))
        .ok()?;
    let r = Reader::new(cx, &block, "a template", FIELDS);
    let name = r.string("name", None);
    let file = r.string("file", None);
    let context = match r.get("context").map(|f| &f.value) {
        None => Some(quote!(::tandem::mentor::MetaPromptContext)),
        Some(Value::Type(t)) => Some(quote!(#t)),
        Some(Value::Word(w)) => Some(quote!(#w)),
        Some(v) => {
            r.error(
                v.span(),
                "`context` must be a type, e.g. `MetaPromptContext`",
            );
            None
        }
    };
    Some(TemplateDecl {
        name: name?,
        file: file?,
        context: context?,
    })
}

/// The file's absolute path (relative paths are from the crate root) and its source.
pub fn read(file: &str, span: Span) -> syn::Result<(String, String)> {
    let path = crate_roots()
        .into_iter()
        .map(|root| root.join(file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| std::path::PathBuf::from(file));
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok((path.display().to_string(), source)),
        Err(e) => Err(syn::Error::new(
            span,
            format!(
                "template file `{file}` cannot be read ({e}; paths are relative to the crate root)"
            ),
        )),
    }
}

/// Where a relative file may live: the crate being compiled (`CARGO_MANIFEST_DIR`), then the
/// nearest directory with a `Cargo.toml` above the invoking source file (the same crate, when a
/// harness such as trybuild compiles the file from another manifest).
pub fn crate_roots() -> Vec<std::path::PathBuf> {
    let mut roots: Vec<std::path::PathBuf> = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .into_iter()
        .collect();
    if let Some(source) = proc_macro::Span::call_site().local_file() {
        let source = std::env::current_dir()
            .map(|cwd| cwd.join(&source))
            .unwrap_or(source);
        if let Some(root) = source
            .ancestors()
            .skip(1)
            .find(|dir| dir.join("Cargo.toml").is_file())
        {
            roots.push(root.to_path_buf());
        }
    }
    roots
}

/// Parses the template and returns a function that accesses, on `context`, every variable the
/// template references; compiling it is the check. Errors the parser or walker finds point at
/// `span` and name the template line and column.
pub fn checker(
    file: &str,
    source: &str,
    context: &TokenStream,
    span: Span,
) -> syn::Result<TokenStream> {
    let template = Template::compile_with_name(source, file.to_string())
        .map_err(|e| syn::Error::new(span, format!("template does not parse: {e}")))?;
    let mut walker = Walker {
        file,
        span,
        cx: Ctxt::new(),
        next_var: 0,
    };
    let root = Scope {
        expr: quote!(__context),
        param: None,
    };
    let body = walker.template(&template, &[root]);
    walker.cx.check()?;
    Ok(quote! {
        #[allow(unused_variables, unused_must_use, dead_code, clippy::all)]
        fn __tandem_template_variables(__context: &#context) {
            #body
        }
    })
}

/// A handlebars context level: the Rust expression it stands for, and the block parameter that
/// names it (`{{#each xs as |x|}}`).
#[derive(Clone)]
struct Scope {
    expr: TokenStream,
    param: Option<String>,
}

struct Walker<'a> {
    file: &'a str,
    span: Span,
    cx: Ctxt,
    next_var: usize,
}

impl Walker<'_> {
    fn error(&mut self, at: Option<&TemplateMapping>, msg: String) {
        let place = at
            .map(|m| format!(" (line {}, column {})", m.0, m.1))
            .unwrap_or_default();
        self.cx
            .error(self.span, format!("template `{}`{place}: {msg}", self.file));
    }

    fn template(&mut self, t: &Template, scopes: &[Scope]) -> TokenStream {
        let mut out = TokenStream::new();
        for (i, element) in t.elements.iter().enumerate() {
            let at = t.mapping.get(i);
            out.extend(self.element(element, at, scopes));
        }
        out
    }

    fn element(
        &mut self,
        element: &TemplateElement,
        at: Option<&TemplateMapping>,
        scopes: &[Scope],
    ) -> TokenStream {
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => TokenStream::new(),
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                self.expression(h, at, scopes)
            }
            TemplateElement::HelperBlock(h) => self.block(h, at, scopes),
            _ => {
                self.error(
                    at,
                    "partials and decorators are not supported in meta-prompt templates".into(),
                );
                TokenStream::new()
            }
        }
    }

    /// `{{x}}` or `{{helper a b}}`.
    fn expression(
        &mut self,
        h: &HelperTemplate,
        at: Option<&TemplateMapping>,
        scopes: &[Scope],
    ) -> TokenStream {
        if h.params.is_empty() && h.hash.is_empty() {
            return match &h.name {
                Parameter::Name(n) if HELPERS.contains(&n.as_str()) => TokenStream::new(),
                Parameter::Name(n) => match Path::parse(n) {
                    Ok(p) => self.path(&p, at, scopes).unwrap_or_default(),
                    Err(_) => TokenStream::new(),
                },
                other => self.param(other, at, scopes),
            };
        }
        let mut out = self.helper_name(&h.name, at, false);
        for p in h.params.iter().chain(h.hash.values()) {
            out.extend(self.param(p, at, scopes));
        }
        out
    }

    fn helper_name(
        &mut self,
        name: &Parameter,
        at: Option<&TemplateMapping>,
        block: bool,
    ) -> TokenStream {
        match name.as_name() {
            Some(n) if !block && HELPERS.contains(&n) => {}
            Some(n) => self.error(
                at,
                format!(
                    "unknown {}helper `{n}`; known: {}",
                    if block { "block " } else { "" },
                    if block {
                        "if, unless, each, with".to_string()
                    } else {
                        HELPERS.join(", ")
                    }
                ),
            ),
            None => self.error(at, "a helper must be named".into()),
        }
        TokenStream::new()
    }

    fn param(
        &mut self,
        p: &Parameter,
        at: Option<&TemplateMapping>,
        scopes: &[Scope],
    ) -> TokenStream {
        match p {
            Parameter::Path(path) => self.path(path, at, scopes).unwrap_or_default(),
            Parameter::Name(n) => match Path::parse(n) {
                Ok(p) => self.path(&p, at, scopes).unwrap_or_default(),
                Err(_) => TokenStream::new(),
            },
            Parameter::Literal(_) => TokenStream::new(),
            Parameter::Subexpression(s) => self.element(&s.element, at, scopes),
            _ => TokenStream::new(),
        }
    }

    /// The Rust expression a path denotes, checked by `let _ = &expr;`. `None` for local
    /// variables (`@index`, …) that have no field to check.
    fn resolve(
        &mut self,
        path: &Path,
        at: Option<&TemplateMapping>,
        scopes: &[Scope],
    ) -> Option<TokenStream> {
        let segs = match path {
            Path::Local(_) => return None,
            Path::Relative((segs, _)) => segs,
        };
        let mut level = scopes.len() - 1;
        let mut expr: Option<TokenStream> = None;
        for (i, seg) in segs.iter().enumerate() {
            match seg {
                PathSeg::Ruled(rule) => match format!("{rule:?}").as_str() {
                    "path_up" => level = level.saturating_sub(1),
                    "path_root" => level = 0,
                    _ => return None,
                },
                PathSeg::Named(n) => {
                    if n.parse::<usize>().is_ok() {
                        // Indexing (`xs.[0]`) is not checked further.
                        return expr.or_else(|| Some(scopes[level].expr.clone()));
                    }
                    if expr.is_none()
                        && i == segs
                            .iter()
                            .position(|s| matches!(s, PathSeg::Named(_)))
                            .unwrap_or(0)
                    {
                        if let Some(s) = scopes[..=level]
                            .iter()
                            .rev()
                            .find(|s| s.param.as_deref() == Some(n))
                        {
                            expr = Some(s.expr.clone());
                            continue;
                        }
                    }
                    let base = expr.take().unwrap_or_else(|| scopes[level].expr.clone());
                    let Ok(mut field) = syn::parse_str::<Ident>(n) else {
                        self.error(
                            at,
                            format!("variable `{n}` cannot be a field of a Rust context"),
                        );
                        return None;
                    };
                    field.set_span(self.span);
                    expr = Some(quote!((#base).#field));
                }
                _ => return None,
            }
        }
        Some(expr.unwrap_or_else(|| scopes[level].expr.clone()))
    }

    fn path(
        &mut self,
        path: &Path,
        at: Option<&TemplateMapping>,
        scopes: &[Scope],
    ) -> Option<TokenStream> {
        let span = self.span;
        self.resolve(path, at, scopes)
            .map(|e| quote_spanned!(span=> let _ = &#e;))
    }

    /// `{{#if}}`, `{{#unless}}`, `{{#each}}`, `{{#with}}`.
    fn block(
        &mut self,
        h: &HelperTemplate,
        at: Option<&TemplateMapping>,
        scopes: &[Scope],
    ) -> TokenStream {
        let name = h.name.as_name().unwrap_or_default().to_string();
        if !["if", "unless", "each", "with"].contains(&name.as_str()) {
            return self.helper_name(&h.name, at, true);
        }
        let target = match h.params.first() {
            Some(Parameter::Path(p)) => self.resolve(p, at, scopes),
            Some(Parameter::Name(n)) => Path::parse(n)
                .ok()
                .and_then(|p| self.resolve(&p, at, scopes)),
            Some(other) => {
                let checked = self.param(other, at, scopes);
                return quote!(#checked);
            }
            None => {
                self.error(at, format!("`{{{{#{name}}}}}` needs a value"));
                return TokenStream::new();
            }
        };
        let inverse = h
            .inverse
            .as_ref()
            .map(|t| self.template(t, scopes))
            .unwrap_or_default();
        let param = match &h.block_param {
            Some(BlockParam::Single(Parameter::Name(n))) => Some(n.clone()),
            Some(BlockParam::Pair((Parameter::Name(n), _))) => Some(n.clone()),
            _ => None,
        };
        let span = self.span;
        match name.as_str() {
            "if" | "unless" => {
                let inner = h
                    .template
                    .as_ref()
                    .map(|t| self.template(t, scopes))
                    .unwrap_or_default();
                let check = target.map(|e| quote_spanned!(span=> let _ = &#e;));
                quote!(#check #inner #inverse)
            }
            "each" | "with" => {
                let Some(target) = target else {
                    return TokenStream::new();
                };
                let var = format_ident!("__item{}", self.next_var);
                self.next_var += 1;
                let mut inner_scopes = scopes.to_vec();
                inner_scopes.push(Scope {
                    expr: quote!(#var),
                    param,
                });
                let inner = h
                    .template
                    .as_ref()
                    .map(|t| self.template(t, &inner_scopes))
                    .unwrap_or_default();
                if name == "each" {
                    quote_spanned!(span=> for #var in &#target { #inner } #inverse)
                } else {
                    quote_spanned!(span=> { let #var = &#target; #inner } #inverse)
                }
            }
            _ => TokenStream::new(),
        }
    }
}

/// Checks the declaration: the file exists and parses, its helpers are known, and its
/// variables are fields of the context (checked by the compiler on the expansion).
pub fn expand(t: &TemplateDecl) -> syn::Result<TokenStream> {
    let (file, span) = (&t.file.0, t.file.1);
    let (abs, source) = read(file, span)?;
    let checker = checker(file, &source, &t.context, span)?;
    let name = &t.name.0;
    let context = &t.context;
    Ok(quote!({
        #checker
        ::tandem::mentor::TypedTemplate::<#context>::new(#name, ::core::include_str!(#abs))
    }))
}
