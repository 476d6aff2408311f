//! A minimal client of the local syslog daemon: one datagram per line, `<PRI>ratecached[PID]:
//! line` (the BSD format every local daemon accepts; it stamps the time itself), facility
//! `daemon`, severity from the event's level. When the socket is absent (a container without a
//! syslog daemon) lines are dropped; a daemon restarted since is reconnected to on the next line.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use tracing::Level;

/// syslog facility `daemon` (3), shifted as the priority encodes it.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The syslog priority of an event: facility `daemon` plus the severity of `level`.
pub fn priority(level: Level) -> u8 {
    let severity = match level {
        Level::ERROR => 3, // err
        Level::WARN => 4,  // warning
        Level::INFO => 6,  // info
        _ => 7,            // debug
    };
    FACILITY_DAEMON | severity
}

/// A datagram socket to the syslog daemon at a path.
pub struct Syslog {
    path: PathBuf,
    socket: Mutex<Option<UnixDatagram>>,
}

impl Syslog {
    /// Connects to the daemon at `path`; never fails (lines are dropped while it is absent).
    pub fn connect(path: &Path) -> Syslog {
        Syslog {
            path: path.to_path_buf(),
            socket: Mutex::new(open(path)),
        }
    }

    /// Sends each line of `bytes` as one message at `level`.
    pub fn send(&self, level: Level, bytes: &[u8]) {
        let mut socket = self.socket.lock();
        let mut msg = Vec::with_capacity(bytes.len() + 32);
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            msg.clear();
            let _ = write!(
                msg,
                "<{}>ratecached[{}]: ",
                priority(level),
                std::process::id()
            );
            msg.extend_from_slice(line);
            let sent = socket.as_ref().is_some_and(|s| s.send(&msg).is_ok());
            if !sent {
                // The daemon may have restarted (a new socket at the same path): try once more.
                *socket = open(&self.path);
                if let Some(s) = socket.as_ref() {
                    let _ = s.send(&msg);
                }
            }
        }
    }
}

fn open(path: &Path) -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect(path).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_daemon_facility() {
        assert_eq!(priority(Level::ERROR), 27);
        assert_eq!(priority(Level::WARN), 28);
        assert_eq!(priority(Level::INFO), 30);
        assert_eq!(priority(Level::DEBUG), 31);
        assert_eq!(priority(Level::TRACE), 31);
    }

    #[test]
    fn each_line_is_one_datagram_and_a_missing_daemon_drops_lines() {
        let dir = std::env::temp_dir().join(format!("ratecache-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let absent = Syslog::connect(&path);
        absent.send(Level::INFO, b"dropped\n");
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon.set_nonblocking(true).unwrap();
        // The daemon appeared after the client: the next line reconnects.
        absent.send(Level::WARN, b"<24 get a\n>24 END\n");
        let mut buf = [0u8; 256];
        let pid = std::process::id();
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!("<28>ratecached[{pid}]: <24 get a")
        );
        let n = daemon.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!("<28>ratecached[{pid}]: >24 END")
        );
        assert!(daemon.recv(&mut buf).is_err(), "nothing else was sent");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
