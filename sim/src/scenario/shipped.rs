//! The shipped scenarios (`sim/scenarios/*.toml`), compiled in: a bare name such as `steady-ha`
//! is accepted wherever a scenario file is, from any working directory (a file of that path,
//! if one exists, wins).

/// `(name, TOML text)` of every shipped scenario, sorted by name; the name is the file's
/// without `.toml`.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "admission-rejects",
        include_str!("../../scenarios/admission-rejects.toml"),
    ),
    (
        "all-namespaces",
        include_str!("../../scenarios/all-namespaces.toml"),
    ),
    ("chaos-mix", include_str!("../../scenarios/chaos-mix.toml")),
    (
        "clock-skew",
        include_str!("../../scenarios/clock-skew.toml"),
    ),
    (
        "image-pull-flaky",
        include_str!("../../scenarios/image-pull-flaky.toml"),
    ),
    (
        "kpo-zombies",
        include_str!("../../scenarios/kpo-zombies.toml"),
    ),
    (
        "legacy-thrash",
        include_str!("../../scenarios/legacy-thrash.toml"),
    ),
    (
        "multi-namespace",
        include_str!("../../scenarios/multi-namespace.toml"),
    ),
    (
        "node-drain",
        include_str!("../../scenarios/node-drain.toml"),
    ),
    (
        "scheduler-crash",
        include_str!("../../scenarios/scheduler-crash.toml"),
    ),
    (
        "scheduler-stall",
        include_str!("../../scenarios/scheduler-stall.toml"),
    ),
    ("serve-e2e", include_str!("../../scenarios/serve-e2e.toml")),
    (
        "sigterm-storm",
        include_str!("../../scenarios/sigterm-storm.toml"),
    ),
    (
        "split-brain",
        include_str!("../../scenarios/split-brain.toml"),
    ),
    ("steady-ha", include_str!("../../scenarios/steady-ha.toml")),
    (
        "watch-expiry",
        include_str!("../../scenarios/watch-expiry.toml"),
    ),
];

/// The shipped scenario named `name`, if there is one.
#[must_use]
pub fn shipped(name: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The shipped names, and the closest to `typed` if it looks like a typo of one.
pub(super) fn names_hint(typed: &str) -> String {
    let names = SHIPPED.iter().map(|(n, _)| *n);
    let list = names.clone().collect::<Vec<_>>().join(", ");
    let stem = typed.strip_suffix(".toml").unwrap_or(typed);
    let stem = stem.rsplit('/').next().unwrap_or(stem);
    match super::diagnostics::did_you_mean(stem, names) {
        Some(near) => format!("did you mean `{near}`? shipped: {list}"),
        None => format!("shipped: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::SHIPPED;

    #[test]
    fn every_file_in_the_scenarios_folder_is_compiled_in_as_it_is() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let compiled: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
            .collect();
        assert_eq!(compiled, on_disk);
    }
}
