//! The signal tests' child processes: each scenario re-runs this test binary on itself
//! (`--ignored --exact <scenario>`) with [`CHILD`] set, because it raises signals (or console
//! events) in its own process and, on purpose, dies of the second one.

use std::process::Command;

/// Set in the child's environment.
pub const CHILD: &str = "GO_CONTEXT_SIGNAL_CHILD";

/// The command that runs scenario `name` of this test binary as a child.
pub fn child_command(name: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1");
    command
}

/// Whether this process is a child started by [`child_command`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}
