fn main() {
    let _ = tandem::schedule! {
        name: "x",
        steps_per_round: 20,
        steps_per_round: 30,
    };
}
