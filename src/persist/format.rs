//! The `-e` snapshot file: a header, item records, rate-limit state records, an end marker and
//! a checksum. Pure encoding and decoding (no I/O of its own), so a damaged or foreign file is
//! refused as a whole before anything is restored from it.
//!
//! ```text
//! magic "ratecached-snap\n" | version u32 | wall_ns u64 | mono_ns u64 | seeds 8 x u64
//! records:  1 | key_len u8 | key | flags u32 | exptime u64 (Unix s, 0 never) | cas u64
//!               | key_binary u8 | value_len u32 | value                        (an item)
//!           2 | shard u16 | id u64 | tag u32 | expiry u32 | state_len u8 | state  (a state)
//!         255                                                                  (the end)
//! checksum u64: FNV-1a of every byte before it
//! ```
//! Numbers are little-endian. A state is [`State::encode`]'s versioned form; its times are
//! nanoseconds of the clock that wrote it (`mono_ns` was that clock's reading when the file
//! was written, at wall-clock `wall_ns`), and `expiry` is a second of that clock.

use crate::ratelimit::State;

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 16] = b"ratecached-snap\n";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

const ITEM: u8 = 1;
const STATE: u8 = 2;
const END: u8 = 255;

/// When and how a snapshot was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Wall-clock nanoseconds since the Unix epoch when it was written.
    pub wall_ns: u64,
    /// The writer's monotonic clock at the same moment.
    pub mono_ns: u64,
    /// The limiter's hash seeds (identities are only valid under them).
    pub seeds: [u64; 8],
}

/// A cache item: the store's own record of a live item, written and read field by field.
pub use crate::store::SavedItem as ItemRecord;

/// A rate-limit state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRecord {
    /// The limiter shard it lives in.
    pub shard: u16,
    /// Its identity.
    pub id: u64,
    /// Its tag.
    pub tag: u32,
    /// The second (of the writer's clock) it is full again.
    pub expiry: u32,
    /// The state.
    pub state: State,
}

/// A whole snapshot, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// The header.
    pub header: Header,
    /// The items.
    pub items: Vec<ItemRecord<'a>>,
    /// The rate-limit states.
    pub states: Vec<StateRecord>,
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// It does not start with the magic: not a snapshot of this server.
    Foreign,
    /// Written by another version of the format.
    Version(u32),
    /// Cut short, or its checksum does not match: damaged.
    Corrupt(&'static str),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Foreign => write!(f, "not a ratecached snapshot"),
            FormatError::Version(v) => {
                write!(f, "snapshot format version {v}, this build reads {VERSION}")
            }
            FormatError::Corrupt(why) => write!(f, "damaged snapshot ({why})"),
        }
    }
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Writes a snapshot into `out` (a file, or memory), keeping the running checksum.
pub struct Writer<W: std::io::Write> {
    out: W,
    sum: u64,
}

impl<W: std::io::Write> Writer<W> {
    /// Starts a snapshot with its header.
    pub fn new(out: W, h: &Header) -> std::io::Result<Self> {
        let mut w = Writer {
            out,
            sum: FNV_START,
        };
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        w.put(&h.wall_ns.to_le_bytes())?;
        w.put(&h.mono_ns.to_le_bytes())?;
        for s in h.seeds {
            w.put(&s.to_le_bytes())?;
        }
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.sum = fnv(b, self.sum);
        self.out.write_all(b)
    }

    /// Appends an item.
    pub fn item(&mut self, it: &ItemRecord<'_>) -> std::io::Result<()> {
        let key_len = u8::try_from(it.key.len()).expect("keys are at most 250 bytes");
        let value_len = u32::try_from(it.value.len()).expect("values are under 4 GiB");
        self.put(&[ITEM, key_len])?;
        self.put(it.key)?;
        self.put(&it.flags.to_le_bytes())?;
        self.put(&it.exptime.to_le_bytes())?;
        self.put(&it.cas.to_le_bytes())?;
        self.put(&[u8::from(it.key_binary)])?;
        self.put(&value_len.to_le_bytes())?;
        self.put(it.value)
    }

    /// Appends a rate-limit state.
    pub fn state(&mut self, s: &StateRecord) -> std::io::Result<()> {
        let mut enc = Vec::with_capacity(crate::ratelimit::MAX_ENCODED_LEN);
        s.state.encode(&mut enc);
        self.put(&[STATE])?;
        self.put(&s.shard.to_le_bytes())?;
        self.put(&s.id.to_le_bytes())?;
        self.put(&s.tag.to_le_bytes())?;
        self.put(&s.expiry.to_le_bytes())?;
        self.put(&[enc.len() as u8])?;
        self.put(&enc)
    }

    /// Ends the snapshot (end marker and checksum) and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.put(&[END])?;
        let sum = self.sum;
        self.out.write_all(&sum.to_le_bytes())?;
        Ok(self.out)
    }
}

/// Reads fields off the front of a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if self.0.len() < n {
            return Err(FormatError::Corrupt("cut short"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

/// Checks and decodes a whole snapshot: nothing of a damaged or foreign file comes back.
pub fn parse(bytes: &[u8]) -> Result<Snapshot<'_>, FormatError> {
    if !bytes.starts_with(MAGIC) {
        return Err(FormatError::Foreign);
    }
    if bytes.len() < MAGIC.len() + 4 + 8 {
        return Err(FormatError::Corrupt("cut short"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut c = Cursor(&body[MAGIC.len()..]);
    let version = c.u32()?;
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    if fnv(body, FNV_START) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        return Err(FormatError::Corrupt("checksum mismatch"));
    }
    let header = Header {
        wall_ns: c.u64()?,
        mono_ns: c.u64()?,
        seeds: [
            c.u64()?,
            c.u64()?,
            c.u64()?,
            c.u64()?,
            c.u64()?,
            c.u64()?,
            c.u64()?,
            c.u64()?,
        ],
    };
    let mut snap = Snapshot {
        header,
        items: Vec::new(),
        states: Vec::new(),
    };
    loop {
        match c.u8()? {
            ITEM => {
                let key_len = usize::from(c.u8()?);
                let key = c.take(key_len)?;
                let flags = c.u32()?;
                let exptime = c.u64()?;
                let cas = c.u64()?;
                let key_binary = c.u8()? != 0;
                let value_len = c.u32()? as usize;
                let value = c.take(value_len)?;
                snap.items.push(ItemRecord {
                    key,
                    value,
                    flags,
                    exptime,
                    cas,
                    key_binary,
                });
            }
            STATE => {
                let shard = c.u16()?;
                let id = c.u64()?;
                let tag = c.u32()?;
                let expiry = c.u32()?;
                let len = usize::from(c.u8()?);
                let state = State::decode(c.take(len)?).ok_or(FormatError::Corrupt("bad state"))?;
                snap.states.push(StateRecord {
                    shard,
                    id,
                    tag,
                    expiry,
                    state,
                });
            }
            END if c.0.is_empty() => return Ok(snap),
            _ => return Err(FormatError::Corrupt("bad record")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Tat;

    fn sample() -> Vec<u8> {
        let h = Header {
            wall_ns: 1_700_000_000_000_000_000,
            mono_ns: 42,
            seeds: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        let mut w = Writer::new(Vec::new(), &h).unwrap();
        w.item(&ItemRecord {
            key: b"k",
            value: b"hello",
            flags: 7,
            exptime: 0,
            cas: 9,
            key_binary: true,
        })
        .unwrap();
        w.state(&StateRecord {
            shard: 3,
            id: 0xabcd,
            tag: 5,
            expiry: 100,
            state: State::Gcra(Tat::new(123, 1, 3).unwrap()),
        })
        .unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_snapshot_reads_back() {
        let bytes = sample();
        let s = parse(&bytes).unwrap();
        assert_eq!(s.header.mono_ns, 42);
        assert_eq!(s.items[0].value, b"hello");
        assert!(s.items[0].key_binary);
        assert_eq!(s.states[0].state, State::Gcra(Tat::new(123, 1, 3).unwrap()));
    }

    #[test]
    fn damaged_and_foreign_files_are_refused_whole() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(parse(&b).is_err(), "flip at {i}");
        }
        assert_eq!(
            parse(b"hello world, not a snapshot"),
            Err(FormatError::Foreign)
        );
        let mut v2 = bytes.clone();
        v2[MAGIC.len()] = 2;
        assert_eq!(parse(&v2), Err(FormatError::Version(2)));
    }
}
