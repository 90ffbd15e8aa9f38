use tandem::mentor::{MetaPromptContext, TypedTemplate};

/// A context of the user's own; the template must only use its fields.
#[derive(serde::Serialize)]
struct Short {
    task_description: String,
}

const MISSPELLED: TypedTemplate<MetaPromptContext> = tandem::template! {
    name: "misspelled",
    file: "tests/ui/templates/misspelled.hbs",
};

const WRONG_CONTEXT: TypedTemplate<Short> = tandem::template! {
    name: "wrong-context",
    file: "templates/catalyst.hbs",
    context: Short,
};

fn main() {
    let _ = (MISSPELLED, WRONG_CONTEXT);
}
