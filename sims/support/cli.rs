//! Running the real `qk` binary from integration tests.

use std::process::Command;

/// Runs `qk args` with `env` set (and `QK_SHOW_PANICS` cleared): exit code (-1 when killed),
/// stdout, stderr.
#[allow(dead_code)]
pub fn qk_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qk"));
    command.args(args).env_remove("QK_SHOW_PANICS");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("qk runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `qk args`: exit code, stdout, stderr.
#[allow(dead_code)]
pub fn qk(args: &[&str]) -> (i32, String, String) {
    qk_env(args, &[])
}
