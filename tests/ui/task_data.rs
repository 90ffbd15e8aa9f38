use tandem::task::TaskSpec;

// Paths, columns and raw labels of data files, checked against the files themselves.
const MISSING_FILE: TaskSpec = tandem::task! {
    name: "a",
    description: "a task",
    data: csv("tests/ui/data/nowhere.csv", text: "review", label: "stars"),
    classes: ["bad", "good"],
};

const WRONG_COLUMNS: TaskSpec = tandem::task! {
    name: "b",
    description: "a task",
    data: csv("tests/ui/data/reviews.csv", text: "text", pair: "review", label: "rating",
              labels: [1, 2, 1]),
    classes: ["bad", "good"],
    readout: input_head,
};

const WRONG_FIELDS: TaskSpec = tandem::task! {
    name: "c",
    description: "a task",
    data: jsonl("tests/ui/data/qa.jsonl", text: "question", pair: "question", label: "label",
                selection: train),
    classes: ["no", "yes"],
    readout: input_head,
};

const FOLDER_WITHOUT_SPLITS: TaskSpec = tandem::task! {
    name: "d",
    description: "a task",
    data: tsv("tests/ui/data/folder", text: "text", label: "label"),
    classes: ["neg", "pos"],
};

const MALFORMED: TaskSpec = tandem::task! {
    name: "e",
    description: "a task",
    data: parquet("x.parquet"),
    classes: ["one"],
};

const NO_PATH: TaskSpec = tandem::task! {
    name: "f",
    description: "a task",
    data: jsonl(text: "a", label: "b", format: "x"),
    classes: ["no", "yes", "no"],
};

fn main() {
    let _ = (MISSING_FILE, WRONG_COLUMNS, WRONG_FIELDS, FOLDER_WITHOUT_SPLITS, MALFORMED, NO_PATH);
}
