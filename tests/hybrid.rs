//! Hybrid post-quantum recipients (`mlkem768x25519`, SPEC.md §4.6) through
//! the public API: round trips alone, with several recipients and with a
//! passphrase; the label rule between post-quantum and classical
//! recipients (§4.7); what `inspect` says without a key; header sizes.

mod common;

use kuvert::{
    Argon2Params, Error, HybridIdentity, Identity, KeyError, MemorySink, MixError, Opener,
    Passphrase, PostQuantum, Recipient, Sealer, Warning, X25519Identity, inspect,
    parse_recipients_file,
};

use common::{data, open_with, seal_with};

fn hybrid(seed: u8) -> HybridIdentity {
    HybridIdentity::from_bytes([seed; 32])
}

fn sealed(sealer: &Sealer, content: &[u8]) -> Vec<Vec<u8>> {
    seal_with(sealer, content, &[777])
}

#[test]
fn one_hybrid_recipient_round_trips() {
    let me = hybrid(1);
    let content = data(100_000, 1);
    let sealer = Sealer::new().recipient(me.to_public()).chunk_size(4096);
    let volumes = sealed(&sealer, &content);
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, ["mlkem768x25519"]);
    assert_eq!(info.post_quantum(), PostQuantum::Protected);
    // One hybrid stanza (1,547 bytes) still fits the smallest padded header.
    assert_eq!(info.header_len, 2048);
    let opened = open_with(&Opener::new().identity(me.clone()), volumes.clone()).expect("opens");
    assert_eq!(opened, content);
    // Through Identity, parsed from age's string, too.
    let parsed: Identity = me.to_secret_string().parse().expect("identity");
    assert_eq!(
        open_with(&Opener::new().identity(parsed), volumes.clone()).expect("opens"),
        content
    );
    // Another hybrid identity, or an X25519 one, does not open it.
    for stranger in [
        Identity::from(hybrid(2)),
        X25519Identity::from_bytes([1; 32]).into(),
    ] {
        match open_with(&Opener::new().identity(stranger), volumes.clone()) {
            Err(Error::NoMatchingKey { stanza_types }) => {
                assert_eq!(stanza_types, ["mlkem768x25519"]);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn three_hybrid_recipients_each_open() {
    let team = [hybrid(11), hybrid(12), hybrid(13)];
    let content = data(50_000, 2);
    let sealer = Sealer::new()
        .recipients(team.iter().map(HybridIdentity::to_public))
        .chunk_size(4096)
        .volume_size(32 << 10);
    let volumes = sealed(&sealer, &content);
    assert!(volumes.len() > 1);
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, ["mlkem768x25519"; 3]);
    // L = 98 + 3 × 1,547 = 4,739: padded to 6,144 (SPEC.md §4.6 table).
    assert_eq!(info.header_len, 6144);
    for member in &team {
        let opened = open_with(&Opener::new().identity(member.clone()), volumes.clone());
        assert_eq!(opened.expect("every member opens"), content);
    }
}

#[test]
fn hybrid_beside_a_passphrase_needs_no_override() {
    let me = hybrid(21);
    let content = data(9_000, 3);
    let sealer = Sealer::new()
        .recipient(me.to_public())
        .passphrase(Passphrase::new("correct horse battery staple"))
        .argon2_params(Argon2Params::MINIMUM)
        .chunk_size(4096);
    let volumes = sealed(&sealer, &content);
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, ["mlkem768x25519", "argon2id"]);
    assert_eq!(info.post_quantum(), PostQuantum::Protected);
    assert_eq!(info.header_len, 2048);
    assert_eq!(
        open_with(&Opener::new().identity(me), volumes.clone()).expect("key opens"),
        content
    );
    let by_passphrase = Opener::new().passphrase(Passphrase::new("correct horse battery staple"));
    let mut reader = by_passphrase.open(volumes).expect("passphrase opens");
    assert_eq!(
        reader.warnings(),
        [Warning::PassphraseBesidePublicKeys],
        "the usual warning, nothing else"
    );
    let mut opened = Vec::new();
    std::io::copy(&mut reader, &mut opened).expect("read");
    assert_eq!(opened, content);
}

#[test]
fn post_quantum_beside_classical_is_refused_before_anything_is_written() {
    let pq = hybrid(31).to_public();
    let classical = X25519Identity::from_bytes([31; 32]).to_public();
    let sealer = Sealer::new()
        .recipient(pq.clone())
        .recipient(classical.clone());
    let refusal = |err: Error| match err {
        Error::IncompatibleRecipients {
            reason:
                MixError::Classical {
                    post_quantum,
                    classical,
                },
        } => (post_quantum, classical),
        other => panic!("{other:?}"),
    };
    let expected = ("mlkem768x25519".to_owned(), "X25519".to_owned());
    assert_eq!(
        refusal(sealer.seal(MemorySink::new()).expect_err("refused")),
        expected
    );
    assert_eq!(refusal(sealer.plan(10).expect_err("refused")), expected);
    // In the other order too: the first recipient is not special.
    let reversed = Sealer::new().recipient(classical).recipient(pq);
    assert_eq!(
        refusal(reversed.seal(MemorySink::new()).expect_err("refused")),
        expected
    );
}

#[test]
fn allow_classical_seals_a_mixed_set_that_either_key_opens() {
    let pq = hybrid(41);
    let classical = X25519Identity::from_bytes([41; 32]);
    let content = data(20_000, 4);
    let sealer = Sealer::new()
        .recipient(pq.to_public())
        .recipient(classical.to_public())
        .allow_classical(true)
        .chunk_size(4096);
    let plan = sealer.plan(content.len() as u64).expect("plan");
    let volumes = sealed(&sealer, &content);
    assert_eq!(plan.total_len(), volumes[0].len() as u64, "plan is exact");
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, ["mlkem768x25519", "X25519"]);
    assert_eq!(
        info.post_quantum(),
        PostQuantum::Classical {
            types: vec!["X25519".into()]
        }
    );
    for identity in [Identity::from(pq), classical.into()] {
        let opened = open_with(&Opener::new().identity(identity), volumes.clone());
        assert_eq!(opened.expect("either opens"), content);
    }
    // Classical only: nothing to refuse, and inspect says so.
    let only = Sealer::new().recipient(X25519Identity::from_bytes([42; 32]).to_public());
    let volumes = sealed(&only, b"classical");
    assert!(matches!(
        inspect(&volumes[0]).expect("inspect").post_quantum(),
        PostQuantum::Classical { types } if types == ["X25519"]
    ));
}

#[test]
fn header_sizes_per_recipient_type() {
    // The padded header (offset of the first chunk) for n recipients of a
    // type, as SPEC.md §4.6's table gives it; the plan knows it first.
    let header = |recipients: Vec<Recipient>, passphrase: bool| {
        let mut sealer = Sealer::new()
            .recipients(recipients)
            .allow_classical(true)
            .chunk_size(4096);
        if passphrase {
            sealer = sealer
                .passphrase(Passphrase::new("pass"))
                .argon2_params(Argon2Params::MINIMUM);
        }
        let plan = sealer.plan(0).expect("plan");
        let volumes = sealed(&sealer, b"");
        let info = inspect(&volumes[0]).expect("inspect");
        assert_eq!(plan.header_len(), info.header_len);
        info.header_len
    };
    let hybrids =
        |n: u8| -> Vec<Recipient> { (0..n).map(|i| hybrid(i).to_public().into()).collect() };
    let x25519s = |n: u8| -> Vec<Recipient> {
        (0..n)
            .map(|i| X25519Identity::from_bytes([i + 1; 32]).to_public().into())
            .collect()
    };
    assert_eq!(header(hybrids(1), false), 2048);
    assert_eq!(header(hybrids(1), true), 2048);
    assert_eq!(header(hybrids(2), false), 4096);
    assert_eq!(header(hybrids(3), false), 6144);
    assert_eq!(header(hybrids(10), false), 16384);
    assert_eq!(header(x25519s(1), false), 2048);
    assert_eq!(header(x25519s(22), false), 2048);
    assert_eq!(header(x25519s(23), false), 4096);
    let mut mixed = hybrids(1);
    mixed.extend(x25519s(1));
    assert_eq!(header(mixed, false), 2048);
}

#[test]
fn recipients_files_carry_hybrid_keys_and_refuse_broken_ones() {
    let me = hybrid(51);
    let text = format!(
        "# created: 2026-12-02T08:00:00Z\n# public key: {0}\n{0}\n",
        me.to_public()
    );
    let recipients = parse_recipients_file(&text).expect("recipients file");
    assert_eq!(recipients, [Recipient::Hybrid(me.to_public())]);
    // One character off in the middle of 1,959: the checksum catches it.
    let mut typo = me.to_public().to_string().into_bytes();
    typo[900] = if typo[900] == b'q' { b'p' } else { b'q' };
    let typo = String::from_utf8(typo).expect("ascii");
    assert!(matches!(
        parse_recipients_file(&format!("\n{typo}\n")),
        Err(Error::KeyFileLine {
            line: 2,
            reason: KeyError::Bech32 { what: "recipient" },
            ..
        })
    ));
    // An 8,193-character string is refused before it is decoded.
    let long = format!("age1pq1{}", "q".repeat(8186));
    assert_eq!(long.len(), 8193);
    assert!(matches!(
        long.parse::<Recipient>(),
        Err(Error::InvalidKey {
            reason: KeyError::TooLong { what: "recipient" }
        })
    ));
}
