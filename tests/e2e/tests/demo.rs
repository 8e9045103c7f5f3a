//! The demo is a test: the same code `ferrolb-demo` runs (the `e2e::demo` module) plays
//! every walkthrough on a cluster of its own, checks each step as it goes (the owner's MAC in
//! the client's neighbour table, which Pods answer, BIRD's next hops, pool counts and
//! messages, the addresses of kube-vip-cloud-provider's README, traffic resuming after the
//! announcing node dies and nothing moving when it returns), and then compares everything
//! it printed, normalised, with `tests/demo.expected`.
//!
//! The README commands the demo runs ([`README_COMMANDS`]) must still be in README.md, and
//! the demo's teardown (what Ctrl-C and `ferrolb-demo --down` run) must leave none of its
//! namespaces behind.
//!
//! After an intended change of the output, write the file again with
//! `FERROLB_DEMO_BLESS=1 cargo test -p e2e --test demo` and review the diff.

use e2e::demo::report::difference;
use e2e::demo::state::StateDir;
use e2e::demo::{Demo, Options, README_COMMANDS, TOOLS, WALKTHROUGH_IP};

const EXPECTED: &str = "tests/demo.expected";

#[test]
fn the_demo_shows_what_the_seeds_show() {
    if !e2e::netns::prerequisites("the demo test", TOOLS) {
        return;
    }
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    for command in README_COMMANDS {
        let command = command.replace("{ip}", WALKTHROUGH_IP);
        assert!(
            readme.contains(&command),
            "README.md no longer shows `{command}`, which the demo runs"
        );
    }

    let state_dir = tempfile::tempdir().expect("state dir");
    let state = StateDir::new(&state_dir.path().join("state"));
    state.claim().expect("a fresh state dir");
    let prefix = format!("flbd{}-", std::process::id() % 100_000);
    let mut demo = Demo::start(&Options {
        namespace_prefix: Some(prefix.clone()),
        namespace_record: Some(state.namespace_record()),
        dir_in: Some(state.path.clone()),
        echo: false,
    });
    demo.run_all();
    let actual = demo.report.normalised_text();

    // Ctrl-C / --down: everything recorded goes, with the processes in it.
    let recorded = state.namespaces();
    assert_eq!(
        recorded.len(),
        7,
        "bridge, cp, node-1..3, client, router: {recorded:?}"
    );
    let removed = state.tear_down();
    let left: Vec<String> = recorded
        .iter()
        .filter(|ns| std::path::Path::new("/run/netns").join(ns).exists())
        .cloned()
        .collect();
    assert!(left.is_empty(), "teardown left {left:?}: {removed:?}");
    drop(demo);

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
