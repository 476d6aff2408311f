//! Slab classes as memcached sizes them: chunk sizes growing by a factor from a minimum, 8-byte
//! aligned, up to `slab_chunk_max`; items larger than that are charged as chained chunks.
//!
//! ratecache does not carve memory out of pages; it charges every item the chunk memcached
//! would give it, so `-m`, eviction and `stats slabs` behave as memcached's do.

/// Size of memcached's item header on 64-bit builds (`sizeof(item)`).
pub const ITEM_HEADER: usize = 48;
/// Extra bytes memcached stores per item when cas uniques are on.
pub const CAS_BYTES: usize = 8;
/// Chunk sizes are aligned to this many bytes.
const CHUNK_ALIGN: usize = 8;
/// memcached's MAX_NUMBER_OF_SLAB_CLASSES (class ids 1..=63).
const MAX_CLASSES: usize = 63;

/// The bytes memcached's item for this key/value takes (`ITEM_ntotal`), before chunk rounding.
pub fn item_total(key_len: usize, value_len: usize, flags: u32, use_cas: bool) -> usize {
    ITEM_HEADER
        + key_len
        + 1
        + if flags != 0 { 4 } else { 0 }
        + value_len
        + 2
        + if use_cas { CAS_BYTES } else { 0 }
}

/// The table of slab classes.
#[derive(Debug, Clone)]
pub struct SlabClasses {
    sizes: Vec<usize>,
    page_size: usize,
    chunk_max: usize,
    item_size_max: usize,
}

impl SlabClasses {
    /// Builds the classes as memcached's `slabs_init` does.
    pub fn new(
        factor: f64,
        min_chunk: usize,
        chunk_max: usize,
        page_size: usize,
        item_size_max: usize,
    ) -> Self {
        let mut sizes = Vec::new();
        let mut size = ITEM_HEADER + min_chunk;
        while sizes.len() < MAX_CLASSES - 1 && (size as f64) < chunk_max as f64 / factor {
            if !size.is_multiple_of(CHUNK_ALIGN) {
                size += CHUNK_ALIGN - size % CHUNK_ALIGN;
            }
            sizes.push(size);
            size = (size as f64 * factor) as usize;
        }
        sizes.push(chunk_max);
        SlabClasses {
            sizes,
            page_size,
            chunk_max,
            item_size_max,
        }
    }

    /// Number of classes (ids run from 1 to this).
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Always false: there is at least the largest class.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Chunk size of class `id` (1-based).
    pub fn chunk_size(&self, id: u8) -> usize {
        self.sizes[id as usize - 1]
    }

    /// Chunks of class `id` that fit one page.
    pub fn per_page(&self, id: u8) -> usize {
        self.page_size / self.chunk_size(id)
    }

    /// The page size.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The class for an item of `total` bytes, or `None` when it is over the item size limit.
    /// Chunked items (over `slab_chunk_max`) belong to the largest class.
    pub fn class_for(&self, total: usize) -> Option<u8> {
        if total > self.item_size_max || total == 0 {
            return None;
        }
        if total > self.chunk_max {
            return Some(self.sizes.len() as u8);
        }
        let idx = self.sizes.partition_point(|&s| s < total);
        Some(idx as u8 + 1)
    }

    /// Bytes of slab memory an item of `total` bytes is charged: its chunk, or for a chunked
    /// item the full chunks plus the class chunk that holds the remainder.
    pub fn charge(&self, total: usize) -> usize {
        if total <= self.chunk_max {
            let idx = self.sizes.partition_point(|&s| s < total);
            return self.sizes[idx.min(self.sizes.len() - 1)];
        }
        let full = total / self.chunk_max;
        let rest = total % self.chunk_max;
        let rest_charge = if rest == 0 {
            0
        } else {
            self.sizes[self.sizes.partition_point(|&s| s < rest)]
        };
        full * self.chunk_max + rest_charge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_classes() -> SlabClasses {
        SlabClasses::new(1.25, 48, 512 * 1024, 1024 * 1024, 1024 * 1024)
    }

    #[test]
    fn default_classes_match_memcached() {
        // `memcached -vv` prints these chunk sizes for the defaults.
        let c = default_classes();
        let first: Vec<usize> = (1..=8).map(|id| c.chunk_size(id)).collect();
        assert_eq!(first, vec![96, 120, 152, 192, 240, 304, 384, 480]);
        assert_eq!(c.len(), 39);
        assert_eq!(c.chunk_size(39), 524288);
        assert_eq!(c.chunk_size(38), 394840);
        assert_eq!(c.per_page(1), 10922);
    }

    #[test]
    fn class_lookup_picks_smallest_fitting_chunk() {
        let c = default_classes();
        assert_eq!(c.class_for(1), Some(1));
        assert_eq!(c.class_for(96), Some(1));
        assert_eq!(c.class_for(97), Some(2));
        assert_eq!(c.class_for(600 * 1024), Some(39));
        assert_eq!(c.class_for(1024 * 1024), Some(39));
        assert_eq!(c.class_for(1024 * 1024 + 1), None);
    }

    #[test]
    fn charges_round_up_to_chunks() {
        let c = default_classes();
        assert_eq!(c.charge(50), 96);
        assert_eq!(c.charge(121), 152);
        assert_eq!(c.charge(512 * 1024), 512 * 1024);
        assert_eq!(c.charge(512 * 1024 + 10), 512 * 1024 + 96);
    }

    #[test]
    fn item_total_counts_header_key_flags_cas() {
        assert_eq!(item_total(3, 5, 0, true), 48 + 4 + 7 + 8);
        assert_eq!(item_total(3, 5, 1, false), 48 + 4 + 4 + 7);
    }

    #[test]
    fn factor_changes_growth() {
        let c = SlabClasses::new(2.0, 48, 512 * 1024, 1024 * 1024, 1024 * 1024);
        assert_eq!(c.chunk_size(1), 96);
        assert_eq!(c.chunk_size(2), 192);
        assert_eq!(c.chunk_size(3), 384);
    }
}
