//! The plugin client against real processes: the test plugin
//! (examples/age-plugin-kuvert-test.rs, which `cargo test` builds) copied
//! into a temporary directory that is passed as the search path. Each test
//! runs one of its modes: working, labels, PIN, refusal, malformed output,
//! a 17-byte key, a hang, a crash, msg and confirm, an unknown command.

#![cfg(feature = "plugins")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bech32::{Bech32, Hrp};
use kuvert::plugin::{
    NoUi, PluginIdentity, PluginOptions, PluginRecipient, PluginStanza, PluginUi, PluginWrap,
    unwrap_file_key, wrap_file_key,
};
use kuvert::{Error, MixError, PluginFailure};
use zeroize::Zeroizing;

const FILE_KEY: [u8; 16] = *b"sixteen byte key";

#[path = "common/plugin_binary.rs"]
mod plugin_binary;
use plugin_binary::plugin_binary;

/// A directory holding the test plugin under each of `names` (the plugin
/// decodes any prefix, so one binary serves several names).
fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in names {
        let target = dir
            .path()
            .join(format!("age-plugin-{name}{}", std::env::consts::EXE_SUFFIX));
        // A symlink, not a copy: a file this process wrote could still be
        // open in a child another test forks meanwhile, and exec would
        // fail with ETXTBSY.
        #[cfg(unix)]
        std::os::unix::fs::symlink(plugin_binary(), target).expect("link the plugin");
        #[cfg(not(unix))]
        std::fs::copy(plugin_binary(), target).expect("copy the plugin");
    }
    dir
}

fn options(dir: &Path) -> PluginOptions {
    PluginOptions::default()
        .search_path(dir.as_os_str())
        .timeout(Duration::from_secs(20))
}

/// The texts of a recipient and of the identity that opens what it
/// wraps, for `plugin`, in test-plugin `mode`.
fn key_strings(plugin: &str, mode: u8, seed: u8) -> (String, String) {
    let mut data = vec![mode];
    data.extend(std::iter::repeat_n(seed, 32));
    let recipient =
        bech32::encode_lower::<Bech32>(Hrp::parse(&format!("age1{plugin}")).expect("hrp"), &data)
            .expect("encode");
    let identity = bech32::encode_upper::<Bech32>(
        Hrp::parse(&format!("AGE-PLUGIN-{}-", plugin.to_uppercase())).expect("hrp"),
        &data,
    )
    .expect("encode");
    (recipient, identity)
}

/// [`key_strings`], parsed.
fn keys(plugin: &str, mode: u8, seed: u8) -> (PluginRecipient, PluginIdentity) {
    let (recipient, identity) = key_strings(plugin, mode, seed);
    (
        recipient.parse().expect("recipient"),
        identity.parse().expect("identity"),
    )
}

fn wrap(
    recipients: &[PluginRecipient],
    ui: &dyn PluginUi,
    options: &PluginOptions,
) -> Result<Vec<PluginWrap>, Error> {
    wrap_file_key(recipients, &Zeroizing::new(FILE_KEY), ui, options)
}

fn unwrap(
    identities: &[PluginIdentity],
    stanzas: &[PluginStanza],
    ui: &dyn PluginUi,
    options: &PluginOptions,
) -> Result<Option<[u8; 16]>, Error> {
    unwrap_file_key(identities, stanzas, ui, options).map(|key| key.map(|key| *key))
}

/// The failure of an `Error::Plugin` from plugin `kuvert-test`.
fn failure(err: Error) -> PluginFailure {
    match err {
        Error::Plugin { plugin, failure } if plugin == "kuvert-test" => failure,
        other => panic!("not a kuvert-test plugin error: {other:?}"),
    }
}

/// A user who answers with `pin` and says yes, and notes what was shown.
struct User {
    pin: &'static str,
    seen: Mutex<Vec<String>>,
}

impl User {
    fn new(pin: &'static str) -> Self {
        User {
            pin,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

impl PluginUi for User {
    fn message(&self, plugin: &str, text: &str) -> bool {
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{plugin}: {text}"));
        true
    }
    fn confirm(&self, plugin: &str, text: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{plugin}: {text} [{yes}/{}]", no.unwrap_or("-")));
        Some(true)
    }
    fn request_public(&self, _plugin: &str, _text: &str) -> Option<String> {
        None
    }
    fn request_secret(&self, plugin: &str, text: &str) -> Option<Zeroizing<String>> {
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{plugin}: {text}"));
        Some(Zeroizing::new(self.pin.to_string()))
    }
}

#[test]
fn wraps_and_unwraps_a_file_key() {
    let dir = plugin_dir(&["kuvert-test"]);
    let options = options(dir.path());
    let (first, first_identity) = keys("kuvert-test", 0, 1);
    let (second, second_identity) = keys("kuvert-test", 0, 2);
    let wraps = wrap(&[first, second], &NoUi, &options).expect("wrapped");
    assert_eq!(wraps.len(), 1, "one session for one plugin");
    let [wrapped] = wraps.as_slice() else {
        unreachable!()
    };
    assert_eq!(wrapped.plugin, "kuvert-test");
    assert_eq!(wrapped.labels, None, "mode 0 sends no labels");
    assert_eq!(wrapped.stanzas.len(), 2);
    for stanza in &wrapped.stanzas {
        assert_eq!(stanza.args[0], "kuvert-test");
        assert_eq!(stanza.body.len(), 32, "16-byte key and a tag");
    }
    assert_ne!(wrapped.stanzas[0], wrapped.stanzas[1]);
    // Either identity opens it; an identity of another key does not.
    for identity in [first_identity, second_identity] {
        let key = unwrap(&[identity], &wrapped.stanzas, &NoUi, &options).expect("unwrapped");
        assert_eq!(key, Some(FILE_KEY));
    }
    let (_, stranger) = keys("kuvert-test", 0, 3);
    assert_eq!(
        unwrap(&[stranger], &wrapped.stanzas, &NoUi, &options).expect("ran"),
        None
    );
}

#[test]
fn labels_come_back_as_a_set() {
    let dir = plugin_dir(&["kuvert-test"]);
    let (recipient, _) = keys("kuvert-test", 1, 1);
    let wraps = wrap(&[recipient], &NoUi, &options(dir.path())).expect("wrapped");
    assert_eq!(
        wraps[0].labels,
        Some(["postquantum".to_string()].into_iter().collect())
    );
}

#[test]
fn a_pin_is_asked_through_the_ui() {
    let dir = plugin_dir(&["kuvert-test"]);
    let options = options(dir.path());
    let (recipient, identity) = keys("kuvert-test", 2, 1);
    let user = User::new("1234");
    let wraps = wrap(&[recipient], &user, &options).expect("wrapped");
    let key = unwrap(
        std::slice::from_ref(&identity),
        &wraps[0].stanzas,
        &user,
        &options,
    )
    .expect("unwrapped");
    assert_eq!(key, Some(FILE_KEY));
    assert_eq!(user.seen(), ["kuvert-test: kuvert-test PIN:"; 2]);
    // A wrong PIN, and no UI at all: the plugin's own error, shown.
    for ui in [&User::new("0000") as &dyn PluginUi, &NoUi] {
        let err = unwrap(
            std::slice::from_ref(&identity),
            &wraps[0].stanzas,
            ui,
            &options,
        )
        .expect_err("no PIN");
        assert_eq!(
            err.to_string(),
            "age-plugin-kuvert-test: reported: identity 0: wrong PIN or no PIN"
        );
        assert_eq!(
            failure(err),
            PluginFailure::Reported(vec!["identity 0: wrong PIN or no PIN".into()])
        );
    }
}

#[test]
fn a_refusal_is_reported() {
    let dir = plugin_dir(&["kuvert-test"]);
    let (recipient, _) = keys("kuvert-test", 3, 1);
    let err = wrap(&[recipient], &NoUi, &options(dir.path())).expect_err("refused");
    assert_eq!(
        failure(err),
        PluginFailure::Reported(vec!["kuvert-test refuses (mode 3)".into()])
    );
}

#[test]
fn malformed_output_is_a_protocol_error() {
    let dir = plugin_dir(&["kuvert-test"]);
    let (recipient, _) = keys("kuvert-test", 4, 1);
    let err = wrap(&[recipient], &NoUi, &options(dir.path())).expect_err("malformed");
    assert_eq!(
        failure(err),
        PluginFailure::Protocol(
            "the body of `recipient-stanza` is not canonical unpadded base64".into()
        )
    );
}

#[test]
fn a_17_byte_file_key_is_refused() {
    let dir = plugin_dir(&["kuvert-test"]);
    let options = options(dir.path());
    let (recipient, identity) = keys("kuvert-test", 5, 1);
    let wraps = wrap(&[recipient], &NoUi, &options).expect("wrapped");
    let err = unwrap(&[identity], &wraps[0].stanzas, &NoUi, &options).expect_err("17 bytes");
    assert_eq!(
        failure(err),
        PluginFailure::Protocol("returned a 17-byte file key, not 16".into())
    );
}

#[test]
fn a_hanging_plugin_times_out() {
    let dir = plugin_dir(&["kuvert-test"]);
    let options = options(dir.path()).timeout(Duration::from_secs(2));
    let (recipient, _) = keys("kuvert-test", 6, 1);
    let start = Instant::now();
    let err = wrap(&[recipient], &NoUi, &options).expect_err("hangs");
    let took = start.elapsed();
    assert_eq!(failure(err), PluginFailure::TimedOut { secs: 2 });
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(5)).contains(&took),
        "{took:?}"
    );
}

#[test]
fn a_crash_names_its_status_and_stderr() {
    let dir = plugin_dir(&["kuvert-test"]);
    let (recipient, _) = keys("kuvert-test", 7, 1);
    let err = wrap(&[recipient], &NoUi, &options(dir.path())).expect_err("crashes");
    assert_eq!(
        err.to_string(),
        "age-plugin-kuvert-test: exited with status 3 before finishing; \
         it printed: kuvert-test: simulated crash\\n\\x1b[31mred alert"
    );
    assert!(matches!(
        failure(err),
        PluginFailure::Exited { status: Some(3), stderr_tail } if stderr_tail.contains("simulated crash")
    ));
}

#[test]
fn messages_and_confirmations_reach_the_ui() {
    let dir = plugin_dir(&["kuvert-test"]);
    let options = options(dir.path());
    let (recipient, identity) = keys("kuvert-test", 8, 1);
    let user = User::new("");
    let wraps = wrap(&[recipient], &user, &options).expect("wrapped");
    let key = unwrap(&[identity], &wraps[0].stanzas, &user, &options).expect("unwrapped");
    assert_eq!(key, Some(FILE_KEY));
    let once = [
        "kuvert-test: kuvert-test: touch the key",
        "kuvert-test: Use kuvert-test? [Use it/Skip]",
    ];
    assert_eq!(user.seen(), [once, once].concat());
    let (recipient, _) = keys("kuvert-test", 8, 1);
    let err = wrap(&[recipient], &NoUi, &options).expect_err("no UI");
    assert_eq!(
        failure(err),
        PluginFailure::Reported(vec!["the message was not shown".into()])
    );
}

#[test]
fn unknown_commands_are_answered_unsupported() {
    let dir = plugin_dir(&["kuvert-test"]);
    let options = options(dir.path());
    let (recipient, identity) = keys("kuvert-test", 9, 1);
    let wraps = wrap(&[recipient], &NoUi, &options).expect("wrapped");
    let key = unwrap(&[identity], &wraps[0].stanzas, &NoUi, &options).expect("unwrapped");
    assert_eq!(key, Some(FILE_KEY));
}

#[test]
fn one_session_per_plugin_in_order_of_first_appearance() {
    let dir = plugin_dir(&["kuvert-test", "kuvert-test2"]);
    let options = options(dir.path());
    let (a, _) = keys("kuvert-test2", 0, 1);
    let (b, b_identity) = keys("kuvert-test", 0, 2);
    let (c, _) = keys("kuvert-test2", 0, 3);
    let wraps = wrap(&[a, b, c], &NoUi, &options).expect("wrapped");
    let shape: Vec<(&str, usize)> = wraps
        .iter()
        .map(|wrap| (wrap.plugin.as_str(), wrap.stanzas.len()))
        .collect();
    assert_eq!(shape, [("kuvert-test2", 2), ("kuvert-test", 1)]);
    let stanzas: Vec<PluginStanza> = wraps.into_iter().flat_map(|wrap| wrap.stanzas).collect();
    // A refusing plugin first, then one that matches: the key wins.
    let (_, refusing) = keys("kuvert-test2", 3, 9);
    let key = unwrap(&[refusing.clone(), b_identity], &stanzas, &NoUi, &options);
    assert_eq!(key.expect("unwrapped"), Some(FILE_KEY));
    // No key anywhere: the first plugin's error, not "no match".
    let (_, stranger) = keys("kuvert-test", 0, 7);
    let err = unwrap(&[stranger, refusing], &stanzas, &NoUi, &options).expect_err("refused");
    assert!(matches!(
        err,
        Error::Plugin { plugin, failure: PluginFailure::Reported(_) } if plugin == "kuvert-test2"
    ));
}

/// `dir` as a path relative to the current directory (`../../tmp/…`).
fn relative_to_cwd(dir: &Path) -> PathBuf {
    let cwd = std::env::current_dir().expect("cwd");
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.join(dir.strip_prefix("/").expect("absolute"))
}

#[cfg(unix)]
#[test]
fn relative_path_entries_are_skipped() {
    let dir = plugin_dir(&["kuvert-test"]);
    let relative = relative_to_cwd(dir.path());
    assert!(
        relative.join("age-plugin-kuvert-test").is_file(),
        "the entry does lead to it"
    );
    let (recipient, _) = keys("kuvert-test", 0, 1);
    let path = std::env::join_paths([relative.as_path(), Path::new("")]).expect("joinable");
    let options = PluginOptions::default().search_path(path);
    let err = wrap(std::slice::from_ref(&recipient), &NoUi, &options).expect_err("relative");
    assert_eq!(failure(err), PluginFailure::NotFound);
    // The same directory, absolute, after the relative one: found.
    let path = std::env::join_paths([relative.as_path(), dir.path()]).expect("joinable");
    let options = PluginOptions::default().search_path(path);
    assert!(wrap(&[recipient], &NoUi, &options).is_ok());
}

/// Set in the child that [`a_plugin_only_in_the_cwd_is_not_found`] runs.
const CWD_CHILD: &str = "KUVERT_TEST_PLUGIN_IN_CWD";

/// Runs this test binary again, in a directory that holds the plugin, with
/// PATH = `.:` (both mean the current directory): the child looks the
/// plugin up through the process's PATH and must not find it.
#[cfg(unix)]
#[test]
fn a_plugin_only_in_the_cwd_is_not_found() {
    let dir = plugin_dir(&["kuvert-test"]);
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "plugin_in_cwd_child", "--test-threads=1"])
        .current_dir(dir.path())
        .env("PATH", ".:")
        .env(CWD_CHILD, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child's half of [`a_plugin_only_in_the_cwd_is_not_found`]; alone
/// (without its variable) it checks nothing.
#[test]
fn plugin_in_cwd_child() {
    if std::env::var_os(CWD_CHILD).is_none() {
        return;
    }
    let cwd = std::env::current_dir().expect("cwd");
    assert!(cwd.join("age-plugin-kuvert-test").is_file());
    let (recipient, _) = keys("kuvert-test", 0, 1);
    let err = wrap(
        std::slice::from_ref(&recipient),
        &NoUi,
        &PluginOptions::default(),
    )
    .expect_err("not in PATH");
    assert_eq!(failure(err), PluginFailure::NotFound);
    // The current directory by its absolute name is an ordinary entry.
    let options = PluginOptions::default().search_path(cwd.as_os_str());
    assert!(wrap(&[recipient], &NoUi, &options).is_ok());
}

/// Seals `data` with `sealer` into memory; the volumes.
fn seal(sealer: &kuvert::Sealer, data: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    use std::io::Write;
    let mut writer = sealer.seal(kuvert::MemorySink::new())?;
    writer.write_all(data).map_err(Error::from)?;
    Ok(writer.finish()?.into_volumes())
}

/// Opens the volumes with `opener`: the plaintext.
fn open(opener: &kuvert::Opener, volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut out = Vec::new();
    opener
        .open(volumes)?
        .read_to_end(&mut out)
        .map_err(Error::from)?;
    Ok(out)
}

#[test]
fn sets_seal_and_open_through_a_plugin() {
    let dir = plugin_dir(&["kuvert-test"]);
    let native = kuvert::X25519Identity::from_bytes([0x41; 32]);
    let (recipient, identity) = keys("kuvert-test", 2, 1);
    let user = std::sync::Arc::new(User::new("1234"));
    let sealer = kuvert::Sealer::new()
        .recipient(native.to_public())
        .recipient(recipient)
        .plugin_ui(user.clone())
        .plugin_options(options(dir.path()));
    let data = b"a parcel for a YubiKey holder".repeat(100);
    let volumes = seal(&sealer, &data).expect("sealed");
    let info = kuvert::inspect(&volumes[0]).expect("header");
    assert_eq!(info.stanza_types, ["X25519", "kuvert-test"]);
    // The plugin identity alone opens it, after asking for the PIN.
    let opener = kuvert::Opener::new()
        .identity(identity.clone())
        .plugin_ui(user.clone())
        .plugin_options(options(dir.path()));
    assert_eq!(open(&opener, volumes.clone()).expect("opened"), data);
    assert_eq!(user.seen().len(), 2, "one PIN to seal, one to open");
    // A native identity that matches first: the plugin is never started.
    let opener = kuvert::Opener::new()
        .identity(native)
        .identity(identity.clone())
        .plugin_options(PluginOptions::default().search_path("/nonexistent"));
    assert_eq!(open(&opener, volumes.clone()).expect("opened"), data);
    // A wrong PIN is shown, not "wrong key".
    let opener = kuvert::Opener::new()
        .identity(identity)
        .plugin_ui(std::sync::Arc::new(User::new("0000")))
        .plugin_options(options(dir.path()));
    let err = open(&opener, volumes).expect_err("wrong PIN");
    assert_eq!(
        failure(err),
        PluginFailure::Reported(vec!["identity 0: wrong PIN or no PIN".into()])
    );
}

#[test]
fn a_plugin_that_matches_nothing_leaves_no_matching_key() {
    let dir = plugin_dir(&["kuvert-test"]);
    let native = kuvert::X25519Identity::from_bytes([0x41; 32]);
    let volumes = seal(
        &kuvert::Sealer::new().recipient(native.to_public()),
        b"data",
    )
    .expect("sealed");
    let (_, stranger) = keys("kuvert-test", 0, 1);
    let opener = kuvert::Opener::new()
        .identity(stranger)
        .plugin_options(options(dir.path()));
    assert!(matches!(
        open(&opener, volumes),
        Err(Error::NoMatchingKey { stanza_types }) if stanza_types == ["X25519"]
    ));
}

#[test]
fn label_sets_must_agree() {
    let dir = plugin_dir(&["kuvert-test", "kuvert-test2"]);
    let native = kuvert::X25519Identity::from_bytes([0x41; 32]);
    let (labelled, _) = keys("kuvert-test", 1, 1);
    // A plugin labelling its stanzas `postquantum` beside an X25519
    // recipient (no labels): the post-quantum rule refuses it, nothing is
    // written ...
    let sealer = kuvert::Sealer::new()
        .recipient(native.to_public())
        .recipient(labelled.clone())
        .plugin_options(options(dir.path()));
    let err = seal(&sealer, b"data").expect_err("mixed labels");
    assert!(
        matches!(
            &err,
            Error::IncompatibleRecipients {
                reason: MixError::Classical { post_quantum, classical }
            } if post_quantum == "age-plugin-kuvert-test" && classical == "X25519"
        ),
        "{err}"
    );
    // ... unless classical recipients are allowed.
    assert!(seal(&sealer.clone().allow_classical(true), b"data").is_ok());
    // Beside a plugin without labels: refused too.
    let (unlabelled, _) = keys("kuvert-test2", 0, 2);
    let sealer = kuvert::Sealer::new()
        .recipient(labelled.clone())
        .recipient(unlabelled)
        .plugin_options(options(dir.path()));
    assert!(matches!(
        seal(&sealer, b"data").expect_err("mixed labels"),
        Error::IncompatibleRecipients {
            reason: MixError::Classical { .. }
        }
    ));
    // Alone, with the same labels, or beside a hybrid recipient (also
    // `postquantum`): sealed.
    let (labelled_too, _) = keys("kuvert-test2", 1, 3);
    let sealer = kuvert::Sealer::new()
        .recipient(labelled.clone())
        .recipient(labelled_too)
        .plugin_options(options(dir.path()));
    assert!(seal(&sealer, b"data").is_ok());
    let hybrid = kuvert::HybridIdentity::generate().expect("os randomness");
    let sealer = kuvert::Sealer::new()
        .recipient(hybrid.to_public())
        .recipient(labelled)
        .plugin_options(options(dir.path()));
    assert!(seal(&sealer, b"data").is_ok());
}

#[test]
fn plans_refuse_plugin_recipients() {
    let (recipient, _) = keys("kuvert-test", 0, 1);
    let err = kuvert::Sealer::new()
        .recipient(recipient)
        .plan(1000)
        .expect_err("no plan");
    assert!(matches!(
        err,
        Error::InvalidOption {
            reason: kuvert::OptionError::PluginRecipientsUnplanned
        }
    ));
}

#[test]
fn plugin_keys_parse_as_keys() {
    let (recipient_text, identity_text) = key_strings("kuvert-test", 0, 1);
    let parsed: kuvert::Recipient = recipient_text.parse().expect("recipient");
    let kuvert::Recipient::Plugin(recipient) = &parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(recipient.plugin_name(), "kuvert-test");
    assert_eq!(parsed.to_string(), recipient_text);
    let parsed: kuvert::Identity = identity_text.parse().expect("identity");
    assert!(
        matches!(&parsed, kuvert::Identity::Plugin(identity) if identity.plugin_name() == "kuvert-test")
    );
    assert_eq!(parsed.to_recipient(), None);
    // In files too, beside native keys.
    let native = kuvert::X25519Identity::from_bytes([0x41; 32]);
    let file = format!(
        "# a YubiKey\n{identity_text}\n{}\n",
        native.to_age_secret_string().as_str()
    );
    let identities = kuvert::Identity::parse_file(&file).expect("identity file");
    assert!(matches!(identities[0], kuvert::Identity::Plugin(_)));
    assert!(matches!(identities[1], kuvert::Identity::X25519(_)));
}
