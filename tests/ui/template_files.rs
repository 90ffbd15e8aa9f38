use tandem::mentor::{MetaPromptContext, TypedTemplate};

const MISSING: TypedTemplate<MetaPromptContext> = tandem::template! {
    name: "missing",
    file: "templates/nowhere.hbs",
};

const UNKNOWN_HELPER: TypedTemplate<MetaPromptContext> = tandem::template! {
    name: "unknown-helper",
    file: "tests/ui/templates/unknown_helper.hbs",
};

const UNCLOSED: TypedTemplate<MetaPromptContext> = tandem::template! {
    name: "unclosed",
    file: "tests/ui/templates/unclosed.hbs",
    context: MetaPromptContext,
};

const MISTYPED: TypedTemplate<MetaPromptContext> = tandem::template! {
    name: "mistyped",
    file: "templates/opro.hbs",
    contxt: MetaPromptContext,
};

fn main() {
    let _ = (MISSING, UNKNOWN_HELPER, UNCLOSED, MISTYPED);
}
