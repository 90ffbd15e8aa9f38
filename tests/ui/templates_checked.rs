fn builtin_name_misspelled() {
    let _ = tandem::schedule! {
        name: "x",
        rounds: 2,
        steps_per_round: 20,
        restart: best,
        mentor: { template: "catalist" },
    };
}

fn template_file_missing() {
    let _ = tandem::schedule! {
        name: "y",
        rounds: 2,
        steps_per_round: 20,
        restart: best,
        mentor: { template: "templates/missing.hbs" },
    };
}

fn template_variable_misspelled() {
    let _ = tandem::schedule! {
        name: "z",
        rounds: 2,
        steps_per_round: 20,
        restart: best,
        mentor: { template: "tests/ui/templates/misspelled.hbs" },
    };
}

fn main() {
    builtin_name_misspelled();
    template_file_missing();
    template_variable_misspelled();
}
