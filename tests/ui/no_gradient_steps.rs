fn main() {
    let _ = tandem::schedule! {
        name: "x",
        rounds: 0,
        steps_per_round: 0,
        final_steps: 0,
        restart: best,
    };
}
