//! `podwarden-sim`: the simulator's command line ([`podwarden_sim::cli`]) with podwarden's
//! policy presets only.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    podwarden_sim::cli::Lab::new("podwarden-sim").main()
}
