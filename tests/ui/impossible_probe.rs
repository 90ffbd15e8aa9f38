#[allow(unreachable_code)] fn main() {
    let _ = tandem::schedule! {
        name: "x",
        rounds: 2,
        steps_per_round: 10,
        restart: best,
        probe: { keep: 1.5, rungs: 0, proposals: 0, arms: mentor },
    };
    let _ = tandem::schedule! {
        name: "y",
        rounds: 2,
        steps_per_round: 10,
        restart: probe,
        mentor: { sample: 2 },
    };
    let _ = tandem::schedule! {
        name: "z",
        rounds: 1,
        steps_per_round: 10,
        restart: reference,
        probe: { arms: everything, steps: 1 },
    };
}
