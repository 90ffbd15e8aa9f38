fn main() {
    let _ = tandem::schedule! {
        name: "x",
        rounds: 2,
        steps_per_round: 10,
        restart: best,
        mentor: { candidates: 0, history: 0, sample: 4 },
    };
}
