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

/// What a child prints last if no signal ended it (then [`check_printed`] fails); exits with 3
/// (never 0: a parent may need to tell this from a signal's status).
pub fn outlive_the_signal() -> ! {
    // A bound, not a synchronisation: the signal should have ended the process long before.
    std::thread::sleep(std::time::Duration::from_secs(20));
    println!("SURVIVED");
    std::process::exit(3);
}

/// Checks that the child printed `printed` and did not outlive its signal; gives back its
/// stdout and stderr, for the caller's checks of its status.
pub fn check_printed(out: &std::process::Output, printed: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stdout.contains(printed),
        "child did not print {printed:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        !stdout.contains("SURVIVED"),
        "the signal did not end the child: {stdout}"
    );
    (stdout, stderr)
}
