//! Plugin recipients and identities in the key schedule: what a sealer or
//! opener needs to run plugins (their UI and options), turning their
//! stanzas into the format's, and their label sets. Without the `plugins`
//! feature it is empty and every call is a no-op.

#[cfg(feature = "plugins")]
use std::collections::BTreeSet;
use std::fmt;
#[cfg(feature = "plugins")]
use std::sync::Arc;

#[cfg(feature = "plugins")]
use zeroize::Zeroizing;

use super::{FileKey, Identity, Recipient};
use crate::error::Error;
#[cfg(feature = "plugins")]
use crate::error::{Location, PluginFailure};
use crate::format::Stanza;
#[cfg(feature = "plugins")]
use crate::plugin::{self, NoUi, PluginOptions, PluginStanza, PluginUi};

/// How a sealer or opener runs plugins.
#[derive(Clone, Default)]
pub(crate) struct PluginSettings {
    #[cfg(feature = "plugins")]
    pub(crate) ui: Option<Arc<dyn PluginUi>>,
    #[cfg(feature = "plugins")]
    pub(crate) options: PluginOptions,
}

impl fmt::Debug for PluginSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("PluginSettings");
        #[cfg(feature = "plugins")]
        out.field("ui", &self.ui.is_some())
            .field("options", &self.options);
        out.finish()
    }
}

/// What the plugins wrapped: stanzas in the format's shape, and each
/// plugin's label set (empty if it sent none) for the label rule.
#[derive(Default)]
pub(crate) struct PluginWraps {
    pub(crate) stanzas: Vec<Stanza>,
    #[cfg(feature = "plugins")]
    pub(crate) labels: Vec<(String, BTreeSet<String>)>,
}

impl PluginSettings {
    #[cfg(feature = "plugins")]
    fn ui(&self) -> &dyn PluginUi {
        self.ui.as_deref().unwrap_or(&NoUi)
    }

    /// Wraps the file key to the plugin recipients among `recipients`, one
    /// session per plugin. Each stanza must fit the format (SPEC.md §3.2)
    /// and pass kuvert's own checks of its type, or the plugin is at fault.
    #[cfg_attr(not(feature = "plugins"), allow(clippy::unused_self))]
    pub(crate) fn wrap(
        &self,
        recipients: &[Recipient],
        file_key: &FileKey,
    ) -> Result<PluginWraps, Error> {
        #[cfg(not(feature = "plugins"))]
        {
            let _ = (recipients, file_key);
            Ok(PluginWraps::default())
        }
        #[cfg(feature = "plugins")]
        {
            let plugin_recipients: Vec<_> = recipients
                .iter()
                .filter_map(|recipient| match recipient {
                    Recipient::Plugin(recipient) => Some(recipient.clone()),
                    _ => None,
                })
                .collect();
            if plugin_recipients.is_empty() {
                return Ok(PluginWraps::default());
            }
            let key = Zeroizing::new(*file_key.as_bytes());
            let wraps = plugin::wrap_file_key(&plugin_recipients, &key, self.ui(), &self.options)?;
            let mut out = PluginWraps::default();
            for wrap in wraps {
                for stanza in wrap.stanzas {
                    out.stanzas.push(to_format(&wrap.plugin, stanza)?);
                }
                out.labels
                    .push((wrap.plugin, wrap.labels.unwrap_or_default()));
            }
            Ok(out)
        }
    }

    /// Offers `stanzas` to the plugin identities among `identities`; the
    /// key is checked by the caller (the header MAC).
    #[cfg_attr(not(feature = "plugins"), allow(clippy::unused_self))]
    pub(crate) fn unwrap(
        &self,
        identities: &[Identity],
        stanzas: &[Stanza],
    ) -> Result<Option<FileKey>, Error> {
        #[cfg(not(feature = "plugins"))]
        {
            let _ = (identities, stanzas);
            Ok(None)
        }
        #[cfg(feature = "plugins")]
        {
            let plugin_identities: Vec<_> = identities
                .iter()
                .filter_map(|identity| match identity {
                    Identity::Plugin(identity) => Some(identity.clone()),
                    _ => None,
                })
                .collect();
            if plugin_identities.is_empty() {
                return Ok(None);
            }
            let stanzas: Vec<PluginStanza> = stanzas
                .iter()
                .map(|stanza| PluginStanza {
                    args: std::iter::once(stanza.kind.clone())
                        .chain(stanza.args.iter().cloned())
                        .collect(),
                    body: stanza.body.clone(),
                })
                .collect();
            let key =
                plugin::unwrap_file_key(&plugin_identities, &stanzas, self.ui(), &self.options)?;
            Ok(key.map(FileKey::from_bytes))
        }
    }
}

/// A plugin's stanza as the format holds it, if the format can.
#[cfg(feature = "plugins")]
fn to_format(plugin: &str, stanza: PluginStanza) -> Result<Stanza, Error> {
    let refuse = |why: String| Error::Plugin {
        plugin: plugin.to_string(),
        failure: PluginFailure::Protocol(why),
    };
    let mut args = stanza.args.into_iter();
    let kind = args
        .next()
        .ok_or_else(|| refuse("a stanza without a type".into()))?;
    let stanza = Stanza {
        at: 0,
        kind,
        args: args.collect(),
        body: stanza.body,
    };
    if let Some(why) = stanza.unencodable() {
        return Err(refuse(format!("its stanza cannot be written: {why}")));
    }
    super::check_stanzas(std::slice::from_ref(&stanza), &Location::input(1)).map_err(|err| {
        refuse(format!(
            "its {} stanza fails kuvert's checks of that type: {err}",
            crate::escape_name(&stanza.kind)
        ))
    })?;
    Ok(stanza)
}
