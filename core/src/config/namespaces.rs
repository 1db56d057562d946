//! Which namespaces the executor creates pods in, watches and lists: Airflow's `namespace`,
//! `multi_namespace_mode` and `multi_namespace_mode_namespace_list`.
//!
//! A *scope* is what one watch or one list covers: `Some(namespace)`, or `None` for every
//! namespace (Airflow's `ALL_NAMESPACES` watcher and `list_pod_for_all_namespaces`). The
//! executor runs one watch per scope and sends each list once per scope:
//!
//! | mode | scopes |
//! |---|---|
//! | single namespace (`multi_namespace_mode = false`, Airflow's default) | `[Some(namespace)]` |
//! | `multi_namespace_mode` without a namespace list | `[None]` |
//! | `multi_namespace_mode` with a namespace list | one `Some(ns)` per listed namespace |

use super::{Config, ConfigError};

/// Whether `namespace` is a valid Kubernetes namespace name (a DNS-1123 label: 1 to 63
/// lowercase letters, digits and '-', starting and ending with a letter or digit).
#[must_use]
pub fn is_valid_namespace(namespace: &str) -> bool {
    let ns = namespace.as_bytes();
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && ns.first().is_some_and(u8::is_ascii_alphanumeric)
        && ns.last().is_some_and(u8::is_ascii_alphanumeric)
}

impl Config {
    /// What each of the executor's watches covers, in the order the executor starts them (see
    /// the module's table): `Some(namespace)` or `None` for every namespace.
    ///
    /// ```
    /// let mut cfg = podwarden_core::Config::default();
    /// assert_eq!(cfg.watch_scopes(), [Some("default".to_string())]);
    /// cfg.multi_namespace_mode = true;
    /// assert_eq!(cfg.watch_scopes(), [None]);
    /// cfg.multi_namespace_mode_namespace_list = vec!["etl".into(), "ml".into()];
    /// assert_eq!(cfg.watch_scopes(), [Some("etl".to_string()), Some("ml".to_string())]);
    /// ```
    #[must_use]
    pub fn watch_scopes(&self) -> Vec<Option<String>> {
        if !self.multi_namespace_mode {
            return vec![Some(self.namespace.clone())];
        }
        if self.multi_namespace_mode_namespace_list.is_empty() {
            return vec![None];
        }
        self.multi_namespace_mode_namespace_list
            .iter()
            .cloned()
            .map(Some)
            .collect()
    }

    /// Whether a pod in `namespace` is seen by one of the executor's watches.
    #[must_use]
    pub fn watches_namespace(&self, namespace: &str) -> bool {
        if !self.multi_namespace_mode {
            return self.namespace == namespace;
        }
        self.multi_namespace_mode_namespace_list.is_empty()
            || self
                .multi_namespace_mode_namespace_list
                .iter()
                .any(|ns| ns == namespace)
    }

    /// Checks `namespace` and the namespace options together.
    pub(super) fn validate_namespaces(&self) -> Result<(), ConfigError> {
        if !is_valid_namespace(&self.namespace) {
            return Err(ConfigError::BadNamespace(self.namespace.clone()));
        }
        if !self.multi_namespace_mode {
            if !self.multi_namespace_mode_namespace_list.is_empty() {
                return Err(ConfigError::NamespaceListWithoutMultiNamespaceMode);
            }
            return Ok(());
        }
        let list = &self.multi_namespace_mode_namespace_list;
        for (i, ns) in list.iter().enumerate() {
            if !is_valid_namespace(ns) {
                return Err(ConfigError::BadListedNamespace(ns.clone()));
            }
            if list[..i].contains(ns) {
                return Err(ConfigError::DuplicateListedNamespace(ns.clone()));
            }
        }
        if !self.watches_namespace(&self.namespace) {
            return Err(ConfigError::DefaultNamespaceNotWatched(
                self.namespace.clone(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi(list: &[&str]) -> Config {
        Config {
            multi_namespace_mode: true,
            multi_namespace_mode_namespace_list: list.iter().map(|s| (*s).to_string()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn namespace_names_follow_dns_1123_labels() {
        for good in ["default", "a", "etl-2", &"a".repeat(63)] {
            assert!(is_valid_namespace(good), "{good}");
        }
        for bad in ["", "Etl", "-a", "a-", "a_b", "a.b", " a", &"a".repeat(64)] {
            assert!(!is_valid_namespace(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_listed_namespace_is_watched_and_another_is_not() {
        let cfg = multi(&["default", "etl"]);
        assert!(cfg.watches_namespace("etl"));
        assert!(!cfg.watches_namespace("ml"));
        let all = multi(&[]);
        assert!(all.watches_namespace("anything"));
        let single = Config::default();
        assert!(single.watches_namespace("default"));
        assert!(!single.watches_namespace("etl"));
    }

    #[test]
    fn bad_namespace_options_are_refused_with_the_namespace_named() {
        assert_eq!(
            multi(&["default", "Etl"]).validate(),
            Err(ConfigError::BadListedNamespace("Etl".into()))
        );
        assert_eq!(
            multi(&["default", "etl", "etl"]).validate(),
            Err(ConfigError::DuplicateListedNamespace("etl".into()))
        );
        assert_eq!(
            multi(&["etl"]).validate(),
            Err(ConfigError::DefaultNamespaceNotWatched("default".into()))
        );
        let list_only = Config {
            multi_namespace_mode_namespace_list: vec!["default".into()],
            ..Config::default()
        };
        assert_eq!(
            list_only.validate(),
            Err(ConfigError::NamespaceListWithoutMultiNamespaceMode)
        );
        assert_eq!(multi(&["default", "etl"]).validate(), Ok(()));
        assert_eq!(multi(&[]).validate(), Ok(()));
    }
}
