#[allow(unreachable_code)] fn main() {
    let _ = tandem::schedule! {
        name: "calls",
        rounds: 2,
        steps_per_round: 10,
        restart: probe,
        mentor: { candidates: 4, sample: 2, calls: 9, temperatures: [0.7, -1.0], fit: yes },
        probe: { proposals: 3, screen: { candidates: 2, examples: 0 } },
    };
    let _ = tandem::schedule! {
        name: "screen",
        rounds: 2,
        steps_per_round: 10,
        restart: probe,
        mentor: { sample: 2, calls: 0, temperatures: "hot" },
        probe: { screen: { candidates: 40 } },
    };
    let _ = tandem::schedule! {
        name: "edits",
        rounds: 1,
        steps_per_round: 10,
        restart: best,
        mentor: { protocol: edits },
    };
}
