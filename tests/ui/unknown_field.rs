fn main() {
    let _ = tandem::schedule! {
        name: "x",
        rounds: 2,
        steps_per_round: 20,
        restart: continue,
        lr: 3,
    };
}
