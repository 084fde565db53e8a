//! `age-plugin-kuvert-test`: an age plugin for kuvert's own tests
//! (tests/plugin.rs), with a stanza codec of its own so that it does not
//! share the client's mistakes.
//!
//! Recipients `age1kuvert-test1…` and identities
//! `AGE-PLUGIN-KUVERT-TEST-1…` hold the same data: a mode byte and a
//! 32-byte key. The stanza is `kuvert-test <b64 SHA-256(key)[..4]>` with
//! body ChaCha20-Poly1305(key, nonce 0, file key). The first key's mode
//! says how the plugin behaves:
//!
//! | mode | behaviour |
//! |---|---|
//! | 0 | works |
//! | 1 | works, and sends `labels postquantum` |
//! | 2 | asks for a PIN with `request-secret`; wants `1234`, else reports an error |
//! | 3 | refuses (`error internal`) |
//! | 4 | writes a malformed message |
//! | 5 | unwraps a 17-byte file key |
//! | 6 | hangs |
//! | 7 | crashes: writes to stderr and exits with status 3 |
//! | 8 | sends `msg` and `confirm`, wants `ok` and `ok yes` |
//! | 9 | sends an unknown command, wants `unsupported` |

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use base64ct::{Base64Unpadded, Encoding};
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};
use sha2::{Digest, Sha256};

/// One message: the command and its arguments, and the decoded body.
struct Message {
    args: Vec<String>,
    body: Vec<u8>,
}

/// Reads one message, or `None` at the end of input or on nonsense.
fn read_message(input: &mut impl BufRead) -> Option<Message> {
    let mut line = String::new();
    if input.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let args: Vec<String> = line
        .strip_prefix("-> ")?
        .strip_suffix('\n')?
        .split(' ')
        .map(str::to_string)
        .collect();
    let mut encoded = String::new();
    loop {
        let mut line = String::new();
        input.read_line(&mut line).ok()?;
        let text = line.strip_suffix('\n')?;
        encoded.push_str(text);
        if text.len() < 64 {
            break;
        }
    }
    let body = Base64Unpadded::decode_vec(&encoded).ok()?;
    Some(Message { args, body })
}

/// Writes one message and flushes it.
fn write_message(out: &mut impl Write, args: &[&str], body: &[u8]) {
    let mut text = format!("-> {}\n", args.join(" "));
    let encoded = Base64Unpadded::encode_string(body);
    let mut rest = encoded.as_str();
    while rest.len() >= 64 {
        text.push_str(&rest[..64]);
        text.push('\n');
        rest = &rest[64..];
    }
    text.push_str(rest);
    text.push('\n');
    // The client may have hung up (a test that expects failure): ignore.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Sends a command and returns the client's answer.
fn ask(
    input: &mut impl BufRead,
    out: &mut impl Write,
    args: &[&str],
    body: &[u8],
) -> Option<Message> {
    write_message(out, args, body);
    read_message(input)
}

/// A key's mode and its 32 bytes, from either encoding.
fn decode_key(text: &str) -> Option<(u8, [u8; 32])> {
    let (_hrp, data) = bech32::decode(text).ok()?;
    let (&mode, key) = data.split_first()?;
    Some((mode, key.try_into().ok()?))
}

/// ChaCha20-Poly1305 under `key`, nonce 0: ciphertext then tag.
fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut out = plaintext.to_vec();
    let tag = ChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&Default::default(), &[], out.as_mut_slice().into())
        .expect("in memory");
    out.extend_from_slice(&tag);
    out
}

/// The plaintext of [`seal`], if it authenticates.
fn open(key: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    let split = sealed.len().checked_sub(16)?;
    let mut out = sealed[..split].to_vec();
    let tag = Tag::try_from(&sealed[split..]).ok()?;
    ChaCha20Poly1305::new(key.into())
        .decrypt_inout_detached(&Default::default(), &[], out.as_mut_slice().into(), &tag)
        .ok()?;
    Some(out)
}

fn tag(key: &[u8; 32]) -> String {
    Base64Unpadded::encode_string(&Sha256::digest(key)[..4])
}

/// Reads phase 1: the keys added with `add_command`, and the other
/// messages in order.
fn phase_one(input: &mut impl BufRead, add_command: &str) -> (Vec<(u8, [u8; 32])>, Vec<Message>) {
    let mut keys = Vec::new();
    let mut others = Vec::new();
    while let Some(message) = read_message(input) {
        match message.args[0].as_str() {
            "done" => break,
            command if command == add_command => {
                let Some(key) = message.args.get(1).and_then(|text| decode_key(text)) else {
                    eprintln!("kuvert-test: a key that does not decode");
                    std::process::exit(2);
                };
                keys.push(key);
            }
            _ => others.push(message),
        }
    }
    (keys, others)
}

/// The behaviours every mode shares before any key is used. `Err` is the
/// message of the error to report; modes that end the plugin never return.
fn behave(mode: u8, input: &mut impl BufRead, out: &mut impl Write) -> Result<(), String> {
    match mode {
        2 => {
            let answer = ask(input, out, &["request-secret"], b"kuvert-test PIN:");
            match answer {
                Some(reply) if reply.args == ["ok"] && reply.body == b"1234" => Ok(()),
                _ => Err("wrong PIN or no PIN".to_string()),
            }
        }
        3 => Err("kuvert-test refuses (mode 3)".to_string()),
        4 => {
            let _ = out
                .write_all(b"-> recipient-stanza 0 kuvert-test\n!!not base64!!\n")
                .and_then(|()| out.flush());
            // Wait for the client to hang up.
            while read_message(input).is_some() {}
            std::process::exit(0);
        }
        6 => {
            std::thread::sleep(Duration::from_secs(3600));
            std::process::exit(0);
        }
        7 => {
            eprintln!("kuvert-test: simulated crash\n\x1b[31mred alert");
            std::process::exit(3);
        }
        8 => {
            let shown = ask(input, out, &["msg"], b"kuvert-test: touch the key");
            if shown.is_none_or(|reply| reply.args != ["ok"]) {
                return Err("the message was not shown".to_string());
            }
            let yes = Base64Unpadded::encode_string(b"Use it");
            let no = Base64Unpadded::encode_string(b"Skip");
            let answer = ask(input, out, &["confirm", &yes, &no], b"Use kuvert-test?");
            match answer {
                Some(reply) if reply.args == ["ok", "yes"] => Ok(()),
                Some(reply) => Err(format!("not confirmed: {}", reply.args.join(" "))),
                None => Err("not confirmed".to_string()),
            }
        }
        9 => {
            let answer = ask(input, out, &["kuvert-test-unknown-command", "x"], b"grease");
            match answer {
                Some(reply) if reply.args == ["unsupported"] => Ok(()),
                _ => Err("an unknown command was not answered `unsupported`".to_string()),
            }
        }
        _ => Ok(()),
    }
}

fn recipient_v1(input: &mut impl BufRead, out: &mut impl Write) {
    let (keys, others) = phase_one(input, "add-recipient");
    let labels = others
        .iter()
        .any(|message| message.args[0] == "extension-labels");
    let Some(file_key) = others
        .iter()
        .find(|message| message.args[0] == "wrap-file-key")
        .map(|message| message.body.clone())
    else {
        eprintln!("kuvert-test: no file key to wrap");
        std::process::exit(2);
    };
    let mode = keys.first().map_or(0, |(mode, _)| *mode);
    if let Err(why) = behave(mode, input, out) {
        ask(input, out, &["error", "internal"], why.as_bytes());
        write_message(out, &["done"], b"");
        return;
    }
    if mode == 1 && labels {
        ask(input, out, &["labels", "postquantum"], b"");
    }
    for (_, key) in &keys {
        let body = seal(key, &file_key);
        ask(
            input,
            out,
            &["recipient-stanza", "0", "kuvert-test", &tag(key)],
            &body,
        );
    }
    write_message(out, &["done"], b"");
}

fn identity_v1(input: &mut impl BufRead, out: &mut impl Write) {
    let (keys, others) = phase_one(input, "add-identity");
    let mode = keys.first().map_or(0, |(mode, _)| *mode);
    if let Err(why) = behave(mode, input, out) {
        ask(input, out, &["error", "identity", "0"], why.as_bytes());
        write_message(out, &["done"], b"");
        return;
    }
    let stanzas: Vec<&Message> = others
        .iter()
        .filter(|message| {
            message.args.len() == 4 && message.args[..3] == ["recipient-stanza", "0", "kuvert-test"]
        })
        .collect();
    for (_, key) in &keys {
        for stanza in &stanzas {
            if stanza.args[3] != tag(key) {
                continue;
            }
            let Some(mut file_key) = open(key, &stanza.body) else {
                continue;
            };
            if mode == 5 {
                file_key.push(0);
            }
            ask(input, out, &["file-key", "0"], &file_key);
            write_message(out, &["done"], b"");
            return;
        }
    }
    write_message(out, &["done"], b"");
}

fn main() -> ExitCode {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = io::stdout().lock();
    match std::env::args().nth(1).as_deref() {
        Some("--age-plugin=recipient-v1") => recipient_v1(&mut input, &mut out),
        Some("--age-plugin=identity-v1") => identity_v1(&mut input, &mut out),
        _ => {
            eprintln!("usage: age-plugin-kuvert-test --age-plugin=recipient-v1|identity-v1");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
