//! Where log lines go: stderr (the default), a file (`--log FILE`, appended to and reopened on
//! SIGHUP), or the local syslog (`-d` without `--log`). Each event is written whole, in one
//! write, so lines of different threads never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use super::syslog::Syslog;

/// The socket of the local syslog daemon.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Where the log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard error (memcached's only destination).
    Stderr,
    /// Appended to this file.
    File(PathBuf),
    /// The syslog daemon listening on this socket, facility `daemon` (nothing when absent).
    Syslog(PathBuf),
}

impl Destination {
    /// The destination a configuration asks for: `--log FILE`, else syslog when daemonized
    /// (stderr is gone then), else stderr.
    pub fn of(log_file: Option<&Path>, daemonize: bool) -> Destination {
        match (log_file, daemonize) {
            (Some(path), _) => Destination::File(path.to_path_buf()),
            (None, true) => Destination::Syslog(SYSLOG_SOCKET.into()),
            (None, false) => Destination::Stderr,
        }
    }
}

enum Inner {
    Stderr,
    File { path: PathBuf, file: Mutex<File> },
    Syslog(Syslog),
}

/// An open log destination, shared by the logging layers (cheap to clone).
#[derive(Clone)]
pub struct Sink(Arc<Inner>);

impl Sink {
    /// Opens `dest`. A file path is made absolute first, so a reopen after `-d` changed the
    /// working directory to `/` finds the same file.
    pub fn open(dest: Destination) -> Result<Sink, String> {
        let inner = match dest {
            Destination::Stderr => Inner::Stderr,
            Destination::File(path) => {
                let path = std::path::absolute(&path).unwrap_or(path);
                let file = append(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                Inner::File {
                    path,
                    file: Mutex::new(file),
                }
            }
            Destination::Syslog(socket) => Inner::Syslog(Syslog::connect(&socket)),
        };
        Ok(Sink(Arc::new(inner)))
    }

    /// True when lines go to a terminal (and may carry colour).
    pub fn is_terminal(&self) -> bool {
        matches!(*self.0, Inner::Stderr) && io::stderr().is_terminal()
    }

    /// True when lines go to syslog (which stamps them with the time itself).
    pub fn is_syslog(&self) -> bool {
        matches!(*self.0, Inner::Syslog(_))
    }

    /// Reopens the log file by its path (after log rotation); nothing for other destinations.
    /// On failure the current file stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        if let Inner::File { path, file } = &*self.0 {
            *file.lock() = append(path)?;
        }
        Ok(())
    }

    /// Writes one formatted event (one or more `\n`-terminated lines).
    fn write_event(&self, level: Level, bytes: &[u8]) {
        // A failed log write has nowhere to be reported.
        match &*self.0 {
            Inner::Stderr => {
                let _ = io::stderr().lock().write_all(bytes);
            }
            Inner::File { file, .. } => {
                let _ = file.lock().write_all(bytes);
            }
            Inner::Syslog(s) => s.send(level, bytes),
        }
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One event's bytes, written to the sink whole when dropped.
pub struct EventWriter<'a> {
    sink: &'a Sink,
    level: Level,
    buf: Vec<u8>,
}

impl Write for EventWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.write_event(self.level, &self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> EventWriter<'a> {
        EventWriter {
            sink: self,
            level: Level::INFO,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter<'a> {
        EventWriter {
            sink: self,
            level: *meta.level(),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ratecache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn destinations_follow_log_and_daemon_flags() {
        let file = Path::new("x.log");
        assert_eq!(
            Destination::of(Some(file), true),
            Destination::File(file.into())
        );
        assert_eq!(
            Destination::of(None, true),
            Destination::Syslog(SYSLOG_SOCKET.into())
        );
        assert_eq!(Destination::of(None, false), Destination::Stderr);
    }

    #[test]
    fn a_log_file_is_appended_to_and_reopened_after_rotation() {
        let dir = temp_dir("sink");
        let path = dir.join("r.log");
        std::fs::write(&path, "before\n").unwrap();
        let sink = Sink::open(Destination::File(path.clone())).unwrap();
        assert!(!sink.is_terminal() && !sink.is_syslog());
        let mut w = sink.make_writer();
        w.write_all(b"one\n").unwrap();
        drop(w);
        std::fs::rename(&path, dir.join("r.log.1")).unwrap();
        sink.write_event(Level::INFO, b"two\n");
        sink.reopen().unwrap();
        sink.write_event(Level::INFO, b"three\n");
        let rotated = std::fs::read_to_string(dir.join("r.log.1")).unwrap();
        assert_eq!(rotated, "before\none\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unopenable_log_file_is_refused_with_its_name() {
        let err = Sink::open(Destination::File("/nonexistent-dir/x.log".into()))
            .err()
            .unwrap();
        assert!(err.starts_with("/nonexistent-dir/x.log: "), "{err}");
    }
}
