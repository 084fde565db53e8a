//! Replays every committed fuzz input (fuzz/corpus/TARGET and
//! fuzz/regressions/TARGET) through the same hooks the fuzz targets call, so
//! stable CI covers what the fuzzers found.

use std::fs;
use std::panic;
use std::path::Path;

type Hook = fn(&[u8]);

const TARGETS: [(&str, Hook); 8] = [
    ("header", kuvert::fuzz::header),
    ("open", kuvert::fuzz::open),
    ("volumes", kuvert::fuzz::volumes),
    ("roundtrip", kuvert::fuzz::roundtrip),
    ("archive", kuvert::fuzz::archive),
    ("signing", kuvert::fuzz::signing),
    ("payload", kuvert::fuzz::payload),
    ("trailer", kuvert::fuzz::trailer),
];

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut replayed = 0;
    for (target, hook) in TARGETS {
        let Ok(entries) = fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let data = fs::read(&path).expect("corpus file");
            let outcome = panic::catch_unwind(|| hook(&data));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn corpus_and_regressions_replay_without_panics() {
    let corpus = replay("corpus");
    let regressions = replay("regressions");
    println!("replayed {corpus} corpus and {regressions} regression inputs");
    assert!(corpus >= 4 * 20, "only {corpus} corpus inputs");
}
