//! Process-level start-up chores done before the runtime starts: daemonizing (`-d`), the pid
//! file (`-P`), and dropping root privileges (`-u`).

use crate::config::Config;

/// Daemonizes, writes the pid file and switches user as the configuration asks.
pub fn prepare(cfg: &Config) -> Result<(), String> {
    if cfg.daemonize {
        let mut d = daemonize::Daemonize::new().working_directory("/");
        if let Some(pid) = &cfg.pid_file {
            d = d.pid_file(pid).chown_pid_file(false);
        }
        d.start().map_err(|e| format!("failed to daemonize: {e}"))?;
    } else if let Some(pid) = &cfg.pid_file {
        std::fs::write(pid, format!("{}\n", std::process::id())).map_err(|e| {
            format!(
                "Could not open the pid file {} for writing: {e}",
                pid.display()
            )
        })?;
    }
    if let Some(name) = &cfg.user {
        if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name(name)
                .map_err(|e| format!("can't find the user {name} to switch to: {e}"))?
                .ok_or_else(|| format!("can't find the user {name} to switch to"))?;
            if !user.uid.is_root() {
                nix::unistd::setgid(user.gid)
                    .map_err(|e| format!("failed to assume identity of user {name}: {e}"))?;
                nix::unistd::setuid(user.uid)
                    .map_err(|e| format!("failed to assume identity of user {name}: {e}"))?;
            }
        }
    }
    Ok(())
}
