//! [`WatchState`]: where the pod watch stands (its resource version, a relist in flight).

/// Where the watch stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct WatchState {
    /// The last resource version reached; a relist's answer resets it.
    pub(super) resource_version: String,
    /// A relist is in flight.
    pub(super) relisting: bool,
    /// Relists failed in a row, for the back-off.
    pub(super) relist_failures: u32,
}
