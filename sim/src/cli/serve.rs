//! `serve`: a scenario's cluster over the Kubernetes API, judged when it stops.

use std::io::Write as _;

use super::args::ServeArgs;
use super::exit::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATION};
use super::lab::Lab;
use crate::serve::{serve, ServeOptions};

pub(super) fn run_serve(lab: &Lab, args: &ServeArgs) -> u8 {
    let scenario = match lab.load(&args.scenario, None) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if !args.listen.ip().is_loopback() && args.allow_remote {
        eprintln!(
            "{} serve: warning: listening on {} without authentication: anyone who reaches it can create and delete pods",
            lab.program, args.listen
        );
    }
    let options = ServeOptions {
        listen: args.listen,
        allow_remote: args.allow_remote,
        db: args.db.clone(),
        seed: args.seed,
        until_idle: args.until_idle,
        speed: args.speed,
        dead_after_secs: args.dead_after,
    };
    let name = scenario.name.clone();
    let verdict = serve(scenario, &options, |addr, _| {
        // The first line of standard output: scripts wait for it.
        println!(
            "serving {name} on http://{addr} (metadata DB {})",
            options.db.display()
        );
        let _ = std::io::stdout().flush();
    });
    match verdict {
        Ok(v) => {
            print!("{}", v.render());
            if v.held() {
                EXIT_OK
            } else {
                EXIT_VIOLATION
            }
        }
        Err(e) => {
            eprintln!("{} serve: {e}", lab.program);
            EXIT_UNREADABLE
        }
    }
}
