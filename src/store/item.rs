//! One stored item: 80 bytes, with the key and value inline when they fit in [`INLINE`] bytes
//! (a counter, a short session value), in one reference-counted
//! heap block otherwise.
//!
//! Keeping small keys inline means a lookup touches the hash chain head and then one item:
//! the key compare and the value read hit the lines the item load already brought in. A heap
//! block is an `Arc<[u8]>`, so a reader can keep a large value ([`SharedValue`]) after the
//! shard lock is released while the store replaces or deletes the item.

use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::Arc;

use super::wheel::NO_BUCKET;

/// Key + value bytes kept inside the item itself; longer data goes to one heap block.
pub(crate) const INLINE: usize = 35;

/// End-of-list marker for LRU and hash-chain links.
pub(crate) const NIL: u32 = u32::MAX;

// The flag bits share a u16 with the timing wheel bucket (9 bits: 384 buckets + "none").
const BUCKET_BITS: u16 = 0x1ff;
const FETCHED: u16 = 1 << 9;
const ACTIVE: u16 = 1 << 10;
const STALE: u16 = 1 << 12;
const TOKEN_SENT: u16 = 1 << 13;
const KEY_BINARY: u16 = 1 << 14;
const _: () = assert!(super::wheel::BUCKETS < BUCKET_BITS as usize);
// The data area holds a heap block's address when the bytes do not fit.
const _: () = assert!(INLINE >= std::mem::size_of::<*const u8>());

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
    /// The bytes themselves when `len <= INLINE`, else the data pointer of the heap block
    /// (from `Arc::<[u8]>::into_raw`, `len` bytes, stored unaligned in the first bytes).
    /// `MaybeUninit` because a plain `[u8; N]` copy would drop the pointer's provenance when
    /// the item moves; only the first `len` bytes (inline) or the pointer (heap) are read.
    data: MaybeUninit<[u8; INLINE]>,
    /// Send and Sync follow from what the data area may own: one `Arc<[u8]>`, which is both
    /// (shared access to an item only reads). No `unsafe impl` needed.
    _block: PhantomData<Arc<[u8]>>,
}

/// A value that lives in a heap block, shared with the store: it stays valid and unchanged
/// after the item is replaced, deleted or written in place (writers copy a shared block).
#[derive(Clone)]
pub struct SharedValue {
    block: Arc<[u8]>,
    /// Where the value starts in `block` (after the key).
    start: u32,
}

impl SharedValue {
    /// The value bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.block[self.start as usize..]
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> usize {
        self.block.len() - self.start as usize
    }

    /// True for an empty value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AsRef<[u8]> for SharedValue {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for SharedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedValue")
            .field("len", &self.len())
            .field("holders", &Arc::strong_count(&self.block))
            .finish()
    }
}

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
            data: MaybeUninit::uninit(),
            _block: PhantomData,
        }
    }

    /// True unless this is a vacant slot.
    pub(super) fn is_live(&self) -> bool {
        self.class != 0
    }

    /// Replaces the bytes with `key` followed by `value_parts` (releasing the old heap block).
    pub(super) fn fill(&mut self, key: &[u8], value_parts: &[&[u8]]) {
        let len = key.len() + value_parts.iter().map(|p| p.len()).sum::<usize>();
        let len32 = u32::try_from(len).expect("item under 4 GiB");
        debug_assert!(
            key.len() <= usize::from(u8::MAX),
            "keys are at most 250 bytes"
        );
        // Build the new block before touching `self`, so the item never names a freed block.
        let block = (len > INLINE).then(|| {
            let mut block = Arc::<[u8]>::new_uninit_slice(len);
            let dst = Arc::get_mut(&mut block).expect("a new block is unique");
            // SAFETY: `dst` has room for `len` bytes; `copy_parts` initialises all of them.
            unsafe { copy_parts(dst.as_mut_ptr().cast::<u8>(), key, value_parts) };
            // SAFETY: every byte was just written.
            unsafe { block.assume_init() }
        });
        self.release_block();
        self.key_len = key.len() as u8;
        self.len = len32;
        match block {
            // SAFETY: `len <= INLINE` bytes fit the data area.
            None => unsafe { copy_parts(self.data_ptr_mut(), key, value_parts) },
            Some(block) => self.set_block(block),
        }
    }

    fn data_ptr(&self) -> *const u8 {
        self.data.as_ptr().cast::<u8>()
    }

    fn data_ptr_mut(&mut self) -> *mut u8 {
        self.data.as_mut_ptr().cast::<u8>()
    }

    /// True when the bytes live in a heap block.
    fn is_heap(&self) -> bool {
        self.len as usize > INLINE
    }

    /// The heap block's data pointer (only meaningful when [`Item::is_heap`]).
    fn block_ptr(&self) -> *const u8 {
        debug_assert!(self.is_heap());
        // SAFETY: for heap data the first bytes of `data` hold the pointer `set_block` wrote;
        // the `MaybeUninit` area kept its provenance through moves.
        unsafe { std::ptr::read_unaligned(self.data_ptr().cast::<*const u8>()) }
    }

    /// The heap block, borrowed: the item keeps its reference (never drop the result).
    fn block(&self) -> ManuallyDrop<Arc<[u8]>> {
        let raw = std::ptr::slice_from_raw_parts(self.block_ptr(), self.len as usize);
        // SAFETY: the pointer came from `Arc::<[u8]>::into_raw` of a block of `len` bytes, and
        // the item still owns that reference; `ManuallyDrop` keeps it from being released here.
        ManuallyDrop::new(unsafe { Arc::from_raw(raw) })
    }

    /// Stores `block` (of `self.len` bytes) as the item's heap block, taking its reference.
    /// Any previous block must already be released.
    fn set_block(&mut self, block: Arc<[u8]>) {
        debug_assert!(self.is_heap() && block.len() == self.len as usize);
        let ptr = Arc::into_raw(block).cast::<u8>();
        // SAFETY: the data area has room for a pointer (asserted above); written unaligned.
        unsafe { std::ptr::write_unaligned(self.data_ptr_mut().cast::<*const u8>(), ptr) };
    }

    /// Drops the item's reference to its heap block, if any, and empties the item.
    fn release_block(&mut self) {
        if self.is_heap() {
            drop(ManuallyDrop::into_inner(self.block()));
        }
        self.len = 0;
        self.key_len = 0;
    }

    /// Key and value bytes.
    #[inline]
    fn bytes(&self) -> &[u8] {
        let len = self.len as usize;
        let p = if len > INLINE {
            self.block_ptr()
        } else {
            self.data_ptr()
        };
        // SAFETY: inline, `fill` wrote the first `len` bytes of `data`; on the heap, the block
        // holds `len` initialised bytes and lives while the item holds its reference.
        unsafe { std::slice::from_raw_parts(p, len) }
    }

    /// Key and value bytes, writable; a heap block shared with a [`SharedValue`] is first
    /// copied, so earlier readers keep the bytes they took.
    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len as usize;
        if len <= INLINE {
            // SAFETY: as in `bytes`, and `&mut self` makes the access exclusive.
            return unsafe { std::slice::from_raw_parts_mut(self.data_ptr_mut(), len) };
        }
        let mut block = ManuallyDrop::into_inner(self.block());
        let p = match Arc::get_mut(&mut block) {
            Some(unique) => {
                let p = unique.as_mut_ptr();
                // The item keeps its reference; the pointer in `data` is unchanged.
                std::mem::forget(block);
                p
            }
            None => {
                let mut copy: Arc<[u8]> = Arc::from(&block[..]);
                drop(block);
                let p = Arc::get_mut(&mut copy)
                    .expect("a new block is unique")
                    .as_mut_ptr();
                self.set_block(copy);
                p
            }
        };
        // SAFETY: `p` points at the item's own unique block of `len` bytes (no other `Arc` to
        // it exists), and `&mut self` keeps anyone from cloning it while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(p, len) }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.bytes()[..self.key_len as usize]
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.bytes()[self.key_len as usize..]
    }

    /// The value, writable in place (its length is fixed). Copies a heap block that a
    /// [`SharedValue`] still reads first.
    pub fn value_mut(&mut self) -> &mut [u8] {
        let k = self.key_len as usize;
        &mut self.bytes_mut()[k..]
    }

    /// The value as a [`SharedValue`] when it lives in a heap block; `None` for inline
    /// values (a copy of those is as cheap as a reference count).
    pub fn shared_value(&self) -> Option<SharedValue> {
        self.is_heap().then(|| SharedValue {
            block: Arc::clone(&self.block()),
            start: u32::from(self.key_len),
        })
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
}

impl Drop for Item {
    fn drop(&mut self) {
        self.release_block();
    }
}

/// Writes `key` and then each of `parts` to `dst`, back to back.
///
/// # Safety
/// `dst` must be valid for writes of the total length and not overlap the inputs.
unsafe fn copy_parts(mut dst: *mut u8, key: &[u8], parts: &[&[u8]]) {
    for p in std::iter::once(&key).chain(parts) {
        // SAFETY: the caller guarantees room for all parts; inputs are distinct borrows.
        unsafe {
            std::ptr::copy_nonoverlapping(p.as_ptr(), dst, p.len());
            dst = dst.add(p.len());
        }
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
            (250, if cfg!(miri) { 1 << 12 } else { 1 << 16 }),
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

    /// A key and value long enough for a heap block.
    fn heap_item(value: &[u8]) -> Item {
        Item::new(b"a-key-that-is-long-enough", &[value], 0, 0, 1)
    }

    #[test]
    fn items_keep_their_heap_blocks_when_moved() {
        // A Vec that grows moves every item several times (the shard's slab does this).
        let mut items: Vec<Item> = Vec::new();
        for i in 0..40u8 {
            items.push(Item::new(&[b'k', i], &[&[i; 50][..]], 0, 0, 1));
        }
        let moved = std::mem::replace(&mut items[3], Item::vacant());
        for (i, it) in items.iter().enumerate().filter(|(i, _)| *i != 3) {
            assert_eq!(it.key(), &[b'k', i as u8][..]);
            assert_eq!(it.value(), &[i as u8; 50][..]);
        }
        assert_eq!(moved.value(), &[3u8; 50][..]);
        assert!(!items[3].is_live() && items[3].key().is_empty());
    }

    #[test]
    fn shared_value_outlives_refill_and_drop() {
        assert!(Item::new(b"k", &[b"small"], 0, 0, 1)
            .shared_value()
            .is_none());
        let mut it = heap_item(&[7; 100]);
        let shared = it.shared_value().expect("heap value");
        assert_eq!((shared.as_slice(), shared.len()), (&[7u8; 100][..], 100));
        assert!(!shared.is_empty());
        it.fill(b"a-key-that-is-long-enough", &[&[8; 60]]);
        assert_eq!(it.value(), &[8u8; 60][..]);
        let second = it.shared_value().expect("heap value");
        drop(it);
        assert_eq!(shared.as_ref(), &[7u8; 100][..]);
        assert_eq!(second.clone().as_slice(), &[8u8; 60][..]);
        let long_key = [b'k'; INLINE + 1];
        let empty = Item::new(&long_key, &[b""], 0, 0, 1);
        let empty = empty
            .shared_value()
            .expect("a long key alone is on the heap");
        assert!(empty.is_empty() && empty.as_slice().is_empty());
    }

    #[test]
    fn value_mut_copies_a_shared_block_and_writes_a_unique_one_in_place() {
        let mut it = heap_item(b"0000000000000000");
        let before = it.block_ptr();
        it.value_mut()[0] = b'1';
        assert_eq!(it.block_ptr(), before, "a unique block is written in place");

        let shared = it.shared_value().expect("heap value");
        it.value_mut()[0] = b'2';
        assert_ne!(it.block_ptr(), before, "a shared block is copied first");
        assert_eq!(shared.as_slice(), b"1000000000000000");
        assert_eq!(it.value(), b"2000000000000000");
        assert_eq!(it.key(), b"a-key-that-is-long-enough");

        // Once the reader is gone the new block is unique again: no further copy.
        drop(shared);
        let copied = it.block_ptr();
        it.value_mut()[1] = b'3';
        assert_eq!(it.block_ptr(), copied);
        assert_eq!(it.value(), b"2300000000000000");
    }

    #[test]
    fn items_are_send_and_sync_and_shared_values_too() {
        fn check<T: Send + Sync>() {}
        check::<Item>();
        check::<SharedValue>();
    }

    #[test]
    fn flag_bits_are_independent() {
        let mut it = Item::new(b"k", &[b"v"], 0, 0, 1);
        it.set_fetched(true);
        it.set_stale(true);
        assert!(it.fetched() && it.stale());
        assert!(!it.active() && !it.token_sent() && !it.key_binary());
        it.set_fetched(false);
        assert!(!it.fetched() && it.stale());
        it.set_key_binary(true);
        assert!(it.key_binary() && it.stale() && !it.token_sent());
        // The wheel bucket shares the word and leaves the flags alone.
        assert_eq!(it.wheel_bucket(), NO_BUCKET);
        it.set_wheel_bucket(383);
        assert_eq!(it.wheel_bucket(), 383);
        assert!(it.stale() && !it.fetched());
        it.set_wheel_bucket(NO_BUCKET);
        assert_eq!(it.wheel_bucket(), NO_BUCKET);
        assert!(it.stale() && it.key_binary());
    }
}
