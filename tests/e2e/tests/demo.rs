//! The demo is a test: the same code `ferrolb-demo` runs (the `e2e::demo` module) plays
//! every walkthrough on a cluster of its own, checks each step as it goes (the owner's MAC in
//! the client's neighbour table, which Pods answer, BIRD's next hops, pool counts and
//! messages, the addresses of kube-vip-cloud-provider's README, traffic resuming after the
//! announcing node dies and nothing moving when it returns), and then compares everything
//! it printed, normalised, with `tests/demo.expected`.
//!
//! After an intended change of the output, write the file again with
//! `FERROLB_DEMO_BLESS=1 cargo test -p e2e --test demo` and review the diff.

use e2e::demo::report::difference;
use e2e::demo::{Demo, Options};
use e2e::scenario::TOOLS;

const EXPECTED: &str = "tests/demo.expected";

#[test]
fn the_demo_shows_what_the_seeds_show() {
    let mut tools = TOOLS.to_vec();
    tools.extend(["curl", "nft"]);
    if !e2e::netns::prerequisites("the demo test", &tools) {
        return;
    }
    let mut demo = Demo::start(&Options::default());
    demo.run_all();
    let actual = demo.report.normalised_text();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED);
    if std::env::var("FERROLB_DEMO_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &actual).expect("write the expected output");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if let Some(first) = difference(&expected, &actual) {
        panic!(
            "the demo's output differs from {EXPECTED} at {first}\n--- the demo printed \
             (normalised) ---\n{actual}\n(after an intended change: FERROLB_DEMO_BLESS=1 \
             cargo test -p e2e --test demo)"
        );
    }
}
