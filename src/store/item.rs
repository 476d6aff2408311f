//! One stored item: 80 bytes, with the key and value inline when they fit in [`INLINE`] bytes
//! (a counter, or a rate-limit state under a key of up to 25 bytes), in one heap block
//! otherwise.
//!
//! Keeping small keys inline means a lookup touches the hash chain head and then one item:
//! the key compare and the value read hit the lines the item load already brought in.

use std::ptr::NonNull;

use super::wheel::NO_BUCKET;

/// Key + value bytes kept inside the item itself; longer data goes to one heap block.
pub(crate) const INLINE: usize = 35;

/// End-of-list marker for LRU and hash-chain links.
pub(crate) const NIL: u32 = u32::MAX;

// The flag bits share a u16 with the timing wheel bucket (9 bits: 384 buckets + "none").
const BUCKET_BITS: u16 = 0x1ff;
const FETCHED: u16 = 1 << 9;
const ACTIVE: u16 = 1 << 10;
const INTERNAL: u16 = 1 << 11;
const STALE: u16 = 1 << 12;
const TOKEN_SENT: u16 = 1 << 13;
const KEY_BINARY: u16 = 1 << 14;
const HIDDEN: u16 = 1 << 15;
const _: () = assert!(super::wheel::BUCKETS < BUCKET_BITS as usize);

/// One stored item (or a vacant slot, with class 0).
pub(crate) struct Item {
    pub cas: u64,
    pub flags: u32,
    /// Relative expiry second; 0 = never.
    pub exptime: u32,
    /// Relative second of the last store or touch.
    pub time: u32,
    pub(super) prev: u32,
    pub(super) next: u32,
    /// Next slot in the same hash chain.
    pub(super) hnext: u32,
    pub(super) wheel_idx: u32,
    /// Key + value length.
    len: u32,
    /// The wheel bucket (low 9 bits, all ones for none) and the flag bits above it.
    bucket_bits: u16,
    key_len: u8,
    /// Slab class id (1-based); 0 marks a vacant slot.
    pub class: u8,
    /// The bytes themselves when `len <= INLINE`, else the heap block's address (unaligned).
    data: [u8; INLINE],
}

// SAFETY: the heap block behind `data` is owned by the item alone (like a Box<[u8]>).
unsafe impl Send for Item {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for Item {}

impl Item {
    /// A new unlinked item holding `key` followed by the concatenated `value_parts`. Its slab
    /// charge is not stored: it follows from the lengths and flags ([`super::Store`] computes it).
    pub fn new(key: &[u8], value_parts: &[&[u8]], flags: u32, exptime: u32, class: u8) -> Item {
        debug_assert!(class != 0);
        let mut it = Item::vacant();
        it.fill(key, value_parts);
        it.flags = flags;
        it.exptime = exptime;
        it.class = class;
        it
    }

    /// An empty slot.
    pub(super) fn vacant() -> Item {
        Item {
            cas: 0,
            flags: 0,
            exptime: 0,
            time: 0,
            prev: NIL,
            next: NIL,
            hnext: NIL,
            wheel_idx: 0,
            len: 0,
            bucket_bits: BUCKET_BITS,
            key_len: 0,
            class: 0,
            data: [0; INLINE],
        }
    }

    /// True unless this is a vacant slot.
    pub(super) fn is_live(&self) -> bool {
        self.class != 0
    }

    /// Replaces the bytes with `key` followed by `value_parts` (freeing the old heap block).
    pub(super) fn fill(&mut self, key: &[u8], value_parts: &[&[u8]]) {
        let len = key.len() + value_parts.iter().map(|p| p.len()).sum::<usize>();
        let len32 = u32::try_from(len).expect("item under 4 GiB");
        // Allocate before touching `self`, so the item is never left naming a freed block.
        let block = (len > INLINE).then(|| Box::into_raw(vec![0u8; len].into_boxed_slice()));
        self.free_heap();
        self.key_len = key.len() as u8;
        self.len = len32;
        let dst: &mut [u8] = match block {
            None => &mut self.data[..len],
            Some(block) => {
                let ptr = block as *mut u8;
                // SAFETY: `data` has room for a pointer (INLINE >= 8); read back unaligned.
                unsafe { std::ptr::write_unaligned(self.data.as_mut_ptr() as *mut *mut u8, ptr) };
                // SAFETY: the block was just allocated with `len` bytes and is owned by `self`.
                unsafe { std::slice::from_raw_parts_mut(ptr, len) }
            }
        };
        let (k, mut rest) = dst.split_at_mut(key.len());
        k.copy_from_slice(key);
        for p in value_parts {
            let (d, r) = rest.split_at_mut(p.len());
            d.copy_from_slice(p);
            rest = r;
        }
    }

    fn heap_ptr(&self) -> Option<NonNull<u8>> {
        if self.len as usize <= INLINE {
            return None;
        }
        // SAFETY: for heap data the first bytes of `data` hold the block's address.
        let p = unsafe { std::ptr::read_unaligned(self.data.as_ptr() as *const *mut u8) };
        NonNull::new(p)
    }

    fn free_heap(&mut self) {
        if let Some(p) = self.heap_ptr() {
            let len = self.len as usize;
            // SAFETY: the block came from `Box<[u8]>::into_raw` with exactly `len` bytes.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), len)) });
        }
        self.len = 0;
        self.key_len = 0;
    }

    /// Key and value bytes.
    fn bytes(&self) -> &[u8] {
        match self.heap_ptr() {
            // SAFETY: the block holds `len` initialised bytes owned by `self`.
            Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len as usize) },
            None => &self.data[..self.len as usize],
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self.heap_ptr() {
            // SAFETY: as in `bytes`, and `&mut self` makes the access exclusive.
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), self.len as usize) },
            None => &mut self.data[..self.len as usize],
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.bytes()[..self.key_len as usize]
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.bytes()[self.key_len as usize..]
    }

    /// The value, writable in place (its length is fixed).
    pub fn value_mut(&mut self) -> &mut [u8] {
        let k = self.key_len as usize;
        &mut self.bytes_mut()[k..]
    }

    /// True if expired at relative second `now`.
    pub fn is_expired(&self, now: u32) -> bool {
        self.exptime != 0 && self.exptime <= now
    }

    /// Slab bytes this item is charged: the chunk memcached would give it. A function of its
    /// lengths and flags, so it is computed rather than stored.
    pub fn charge(&self, slabs: &super::slab::SlabClasses, use_cas: bool) -> u64 {
        let total = super::slab::item_total(
            self.key_len as usize,
            self.len as usize - self.key_len as usize,
            self.flags,
            use_cas,
        );
        slabs.charge(total) as u64
    }

    /// Bytes memcached reports for this item in `bytes` (key + value + overhead).
    pub fn size(&self) -> usize {
        super::slab::item_total(self.key_len as usize, self.value().len(), self.flags, true)
    }

    /// The timing wheel bucket holding this item, or [`NO_BUCKET`].
    pub(super) fn wheel_bucket(&self) -> u16 {
        match self.bucket_bits & BUCKET_BITS {
            BUCKET_BITS => NO_BUCKET,
            b => b,
        }
    }

    /// Records the wheel bucket ([`NO_BUCKET`]: none).
    pub(super) fn set_wheel_bucket(&mut self, bucket: u16) {
        let b = if bucket == NO_BUCKET {
            BUCKET_BITS
        } else {
            debug_assert!(bucket < BUCKET_BITS);
            bucket
        };
        self.bucket_bits = (self.bucket_bits & !BUCKET_BITS) | b;
    }

    fn flag(&self, bit: u16) -> bool {
        self.bucket_bits & bit != 0
    }

    fn set_flag(&mut self, bit: u16, on: bool) {
        if on {
            self.bucket_bits |= bit;
        } else {
            self.bucket_bits &= !bit;
        }
    }

    /// Fetched at least once since stored.
    pub fn fetched(&self) -> bool {
        self.flag(FETCHED)
    }
    /// Sets [`Item::fetched`].
    pub fn set_fetched(&mut self, on: bool) {
        self.set_flag(FETCHED, on)
    }
    /// Fetched since it last passed the LRU tail (second chance before eviction).
    pub fn active(&self) -> bool {
        self.flag(ACTIVE)
    }
    /// Sets [`Item::active`].
    pub fn set_active(&mut self, on: bool) {
        self.set_flag(ACTIVE, on)
    }
    /// Holds server-side state (a rate limiter), not a client's value.
    pub fn internal(&self) -> bool {
        self.flag(INTERNAL)
    }
    /// Sets [`Item::internal`].
    pub fn set_internal(&mut self, on: bool) {
        self.set_flag(INTERNAL, on)
    }
    /// Marked stale by a meta invalidation (`md I`, `ms I`).
    pub fn stale(&self) -> bool {
        self.flag(STALE)
    }
    /// Sets [`Item::stale`].
    pub fn set_stale(&mut self, on: bool) {
        self.set_flag(STALE, on)
    }
    /// A meta win token (`W`) was handed out for this item.
    pub fn token_sent(&self) -> bool {
        self.flag(TOKEN_SENT)
    }
    /// Sets [`Item::token_sent`].
    pub fn set_token_sent(&mut self, on: bool) {
        self.set_flag(TOKEN_SENT, on)
    }
    /// Stored by a meta command with a base64 key (`b`): meta replies show the key in base64.
    pub fn key_binary(&self) -> bool {
        self.flag(KEY_BINARY)
    }
    /// Sets [`Item::key_binary`].
    pub fn set_key_binary(&mut self, on: bool) {
        self.set_flag(KEY_BINARY, on)
    }
    /// Server state under a hidden key: no client command can address it, and a client's item
    /// with the same key bytes is another item ([`super::shard::Shard::find`] matches this bit).
    pub fn hidden(&self) -> bool {
        self.flag(HIDDEN)
    }
    /// Sets [`Item::hidden`]; only before the item is linked (it is part of its identity).
    pub fn set_hidden(&mut self, on: bool) {
        self.set_flag(HIDDEN, on)
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.free_heap();
    }
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value().len())
            .field("cas", &self.cas)
            .field("flags", &self.flags)
            .field("exptime", &self.exptime)
            .field("class", &self.class)
            .field("bucket_bits", &self.bucket_bits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_is_eighty_bytes() {
        assert_eq!(std::mem::size_of::<Item>(), 80);
    }

    #[test]
    fn inline_and_heap_data_round_trip() {
        for (klen, vlen) in [
            (1, 0),
            (20, 8),
            (20, 15),
            (20, 16),
            (3, 200),
            (250, 1 << 16),
        ] {
            let key: Vec<u8> = (0..klen).map(|i| b'a' + (i % 26) as u8).collect();
            let value: Vec<u8> = (0..vlen).map(|i| (i * 7) as u8).collect();
            let (a, b) = value.split_at(vlen / 2);
            let mut it = Item::new(&key, &[a, b], 5, 9, 1);
            assert_eq!(it.key(), &key[..]);
            assert_eq!(it.value(), &value[..]);
            if let Some(v) = it.value_mut().first_mut() {
                *v = 0xAA;
            }
            assert_eq!(it.key(), &key[..], "writing the value leaves the key alone");
            // Refill with the other storage kind, then back.
            it.fill(&key, &[b"x"]);
            assert_eq!(it.value(), b"x");
            it.fill(&key, &[&value]);
            assert_eq!(it.value(), &value[..]);
        }
    }

    #[test]
    fn flag_bits_are_independent() {
        let mut it = Item::new(b"k", &[b"v"], 0, 0, 1);
        it.set_fetched(true);
        it.set_stale(true);
        assert!(it.fetched() && it.stale());
        assert!(!it.active() && !it.internal() && !it.token_sent() && !it.key_binary());
        assert!(!it.hidden());
        it.set_fetched(false);
        assert!(!it.fetched() && it.stale());
        it.set_hidden(true);
        assert!(it.hidden() && it.stale() && !it.key_binary());
        // The wheel bucket shares the word and leaves the flags alone.
        assert_eq!(it.wheel_bucket(), NO_BUCKET);
        it.set_wheel_bucket(383);
        assert_eq!(it.wheel_bucket(), 383);
        assert!(it.stale() && !it.fetched());
        it.set_wheel_bucket(NO_BUCKET);
        assert_eq!(it.wheel_bucket(), NO_BUCKET);
        assert!(it.stale() && it.hidden());
    }
}
