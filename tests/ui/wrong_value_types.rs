fn main() {
    let _ = tandem::schedule! {
        name: catalyst,
        rounds: "four",
        steps_per_round: 20,
        restart: sometimes,
        mentor: 3,
    };
}
