//! What a plugin may ask of the user while it runs: a message to show
//! ("touch your YubiKey"), a yes/no choice, a public value, a PIN.

use zeroize::Zeroizing;

/// The user interface a plugin talks to (age-plugin.md, phase 2 commands).
///
/// Every text comes from the plugin, another program: show it escaped
/// ([`escape_name`](crate::escape_name)). Each method returns `None` or
/// `false` when it cannot ask (no terminal): the plugin then decides
/// whether it can go on. Time spent in these calls does not count toward
/// the plugin's timeout.
pub trait PluginUi: Send + Sync {
    /// Shows `text` from `plugin`; false if it cannot be shown.
    fn message(&self, plugin: &str, text: &str) -> bool;

    /// Asks the user to choose `yes` or (if given) `no` after `text`:
    /// `Some(true)` for yes, `Some(false)` for no, `None` if it cannot ask.
    fn confirm(&self, plugin: &str, text: &str, yes: &str, no: Option<&str>) -> Option<bool>;

    /// Asks for a value that is not secret, after `text`.
    fn request_public(&self, plugin: &str, text: &str) -> Option<String>;

    /// Asks for a secret, such as a PIN, after `text`, without echo.
    fn request_secret(&self, plugin: &str, text: &str) -> Option<Zeroizing<String>>;
}

/// The library's default: no user to ask. Every request fails, so a plugin
/// that needs a PIN or a confirmation reports that it could not get one.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoUi;

impl PluginUi for NoUi {
    fn message(&self, _plugin: &str, _text: &str) -> bool {
        false
    }

    fn confirm(&self, _plugin: &str, _text: &str, _yes: &str, _no: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public(&self, _plugin: &str, _text: &str) -> Option<String> {
        None
    }

    fn request_secret(&self, _plugin: &str, _text: &str) -> Option<Zeroizing<String>> {
        None
    }
}
