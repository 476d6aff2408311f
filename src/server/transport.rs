//! The byte stream under a connection, read by readiness: a connection waits for its socket
//! to become readable *without* holding a buffer, then borrows one from a per-thread pool,
//! so an idle connection costs no buffer memory (memcached shares its read buffers the same
//! way). TCP and unix sockets implement it; tests use a socket pair.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// A connected stream socket.
pub trait Transport: AsRawFd + Send + Sync {
    /// Waits until a read may return bytes (or end of stream, or an error).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what is available into `buf`'s spare capacity (`WouldBlock` if nothing is).
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    /// Waits until a write may take bytes.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Writes from `bufs` in order what the socket takes now (`WouldBlock` if nothing).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Writes from `buf` what the socket takes now (`WouldBlock` if nothing).
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Ends the sending side (`shutdown(SHUT_WR)`), so replies already written reach the peer
    /// before the socket is closed.
    fn shutdown_write(&self) {
        let _ = nix::sys::socket::shutdown(self.as_raw_fd(), nix::sys::socket::Shutdown::Write);
    }
}

macro_rules! socket_transport {
    ($t:ty) => {
        impl Transport for $t {
            fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$t>::readable(self)
            }
            fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
                // A read shorter than the room it had drained the socket: it runs inside
                // `try_io` so that it then clears the readiness seen before it (as tokio's own
                // `poll_read` does), and the next wait goes to epoll instead of to a read that
                // finds nothing. A wake-up that came during the read is newer and is kept.
                let room = buf.capacity() - buf.len();
                let mut got = 0;
                let read = self.try_io(Interest::READABLE, || {
                    got = <$t>::try_read_buf(self, buf)?;
                    if got > 0 && got < room {
                        Err(io::ErrorKind::WouldBlock.into())
                    } else {
                        Ok(got)
                    }
                });
                match read {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
                    r => r,
                }
            }
            fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$t>::writable(self)
            }
            fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                <$t>::try_write_vectored(self, bufs)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, buf)
            }
        }
    };
}

socket_transport!(TcpStream);
socket_transport!(UnixStream);

/// Size of a pooled buffer: one read of a pipelined batch.
pub const BUF_SIZE: usize = 16 * 1024;
/// Buffers a thread keeps for reuse; more are freed.
const POOL_MAX: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of at least [`BUF_SIZE`] bytes of capacity, from this thread's pool if it has one.
pub fn take_buffer() -> BytesMut {
    let mut b = POOL
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE));
    b.reserve(BUF_SIZE);
    b
}

/// Returns an emptied buffer to this thread's pool; a grown one (kept after a large request)
/// or one past the pool's size is freed.
pub fn give_buffer(mut b: BytesMut) {
    b.clear();
    if b.capacity() < BUF_SIZE {
        // Consumed bytes at the front (a buffer advanced past its requests) do not count in
        // `capacity`; an emptied buffer that is the sole owner of its block takes them back
        // without allocating. One whose block is still shared with values in flight cannot:
        // it is freed rather than pooled.
        if !b.try_reclaim(BUF_SIZE) {
            return;
        }
    }
    if b.capacity() > 2 * BUF_SIZE {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_plain_buffers_and_frees_grown_ones() {
        let b = take_buffer();
        assert!(b.capacity() >= BUF_SIZE);
        let ptr = b.as_ptr();
        give_buffer(b);
        let b = take_buffer();
        assert_eq!(b.as_ptr(), ptr, "the same buffer comes back");
        let mut big = b;
        big.reserve(1 << 20);
        give_buffer(big);
        let fresh = take_buffer();
        assert!(fresh.capacity() < 1 << 20, "a grown buffer is not pooled");
    }

    #[test]
    fn pool_takes_back_a_consumed_buffer_but_not_one_still_shared() {
        use bytes::{Buf, BufMut};
        // A read buffer whose requests were consumed: its front no longer counts in
        // `capacity`, yet it is pooled whole (it was dropped before, costing two 16 KiB
        // allocations per request at pipeline 1).
        let mut b = take_buffer();
        let ptr = b.as_ptr();
        b.put_slice(&[b'x'; 100]);
        b.advance(100);
        assert!(b.capacity() < BUF_SIZE);
        give_buffer(b);
        let back = take_buffer();
        assert_eq!(
            back.as_ptr(),
            ptr,
            "the consumed buffer comes back, reclaimed"
        );
        assert!(back.capacity() >= BUF_SIZE);
        // A buffer whose block is still held by a value in flight is not pooled.
        let mut b = back;
        b.put_slice(&[b'y'; 100]);
        let held = b.split_to(100).freeze();
        let ptr = b.as_ptr();
        give_buffer(b);
        let next = take_buffer();
        assert_ne!(
            next.as_ptr(),
            ptr,
            "a shared block is not reused while held"
        );
        assert_eq!(&held[..3], b"yyy");
    }
}
