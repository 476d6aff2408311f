//! A hierarchical timing wheel that finds expired items without waiting for a read.
//!
//! Six levels of 64 buckets with power-of-two spans (1 s, 64 s, ~68 min, ~3 days, ~194 days,
//! ~34 years) cover every `u32` deadline, so there is no overflow list and a bucket index is a
//! shift and a mask. Entries are item slot numbers; every item remembers its (bucket, index)
//! so removal is a swap-remove and the wheel never holds stale entries. Expiry work is pulled
//! one entry at a time with [`Wheel::pop_due`], so the owner bounds each batch.

/// Buckets per level.
const SLOTS: usize = 64;
/// Bits of time per level.
const BITS: u32 = 6;
/// Number of levels: 64^6 = 2^36 seconds covers every u32 deadline.
const LEVELS: usize = 6;

/// Bucket id meaning "not scheduled".
pub const NO_BUCKET: u16 = u16::MAX;
/// Number of buckets (levels x slots); bucket ids run below it.
pub const BUCKETS: usize = LEVELS * SLOTS;

/// The wheel. Time is in whole seconds of the store's relative clock.
#[derive(Debug)]
pub struct Wheel {
    buckets: Vec<Vec<u32>>,
    /// The last tick fully processed.
    cur: u32,
    /// Levels still to drain for tick `cur + 1`, highest first (bit per level).
    pending: u8,
    started: bool,
    len: usize,
    /// Entries per level, to skip ticks in which nothing can fire.
    level_len: [usize; LEVELS],
}

impl Wheel {
    /// An empty wheel whose last processed tick is `now`.
    pub fn new(now: u32) -> Self {
        Wheel {
            buckets: (0..LEVELS * SLOTS).map(|_| Vec::new()).collect(),
            cur: now,
            pending: 0,
            started: false,
            len: 0,
            level_len: [0; LEVELS],
        }
    }

    /// Number of scheduled entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `slot` to be handed out once `deadline` has passed; returns its
    /// (bucket, index) position, which the caller stores for [`Wheel::remove`].
    pub fn insert(&mut self, slot: u32, deadline: u32) -> (u16, u32) {
        let next = self.cur.saturating_add(1);
        let d = deadline.max(next);
        let delta = d - next;
        let level = if delta < SLOTS as u32 {
            0
        } else {
            ((31 - delta.leading_zeros()) / BITS) as usize
        };
        let bucket = level * SLOTS + ((d >> (BITS * level as u32)) as usize & (SLOTS - 1));
        let v = &mut self.buckets[bucket];
        v.push(slot);
        self.len += 1;
        self.level_len[level] += 1;
        (bucket as u16, (v.len() - 1) as u32)
    }

    /// Unschedules the entry at `(bucket, idx)`. Returns the slot that moved into `idx`, whose
    /// stored index the caller must update.
    pub fn remove(&mut self, bucket: u16, idx: u32) -> Option<u32> {
        let v = &mut self.buckets[bucket as usize];
        let idx = idx as usize;
        debug_assert!(idx < v.len());
        v.swap_remove(idx);
        self.len -= 1;
        self.level_len[bucket as usize / SLOTS] -= 1;
        v.get(idx).copied()
    }

    /// Hands out the next entry whose bucket is due at or before `now`, or `None` when the
    /// wheel has caught up. The entry is no longer scheduled: the caller either expires the
    /// item or, if its deadline is still ahead (a cascade from a coarser level), inserts it
    /// again.
    pub fn pop_due(&mut self, now: u32) -> Option<u32> {
        loop {
            if !self.started {
                if self.cur >= now {
                    return None;
                }
                // With every level below L empty, only ticks on a 64^L boundary can do work:
                // jump to just before the next one (or to `now`).
                let lowest = self.level_len.iter().position(|&n| n > 0);
                let Some(lowest) = lowest else {
                    self.cur = now;
                    return None;
                };
                if lowest > 0 {
                    let span = 1u64 << (BITS * lowest as u32);
                    let boundary = (u64::from(self.cur) + span) / span * span;
                    let target = (boundary - 1).min(u64::from(now)) as u32;
                    self.cur = self.cur.max(target);
                    if self.cur >= now {
                        return None;
                    }
                }
                self.pending = levels_due(self.cur + 1);
                self.started = true;
            }
            let tick = self.cur + 1;
            while self.pending != 0 {
                let level = (7 - self.pending.leading_zeros()) as usize;
                let bucket =
                    level * SLOTS + ((tick >> (BITS * level as u32)) as usize & (SLOTS - 1));
                if let Some(slot) = self.buckets[bucket].pop() {
                    self.len -= 1;
                    self.level_len[level] -= 1;
                    return Some(slot);
                }
                self.pending &= !(1 << level);
            }
            self.cur = tick;
            self.started = false;
        }
    }
}

/// Bitmask of the levels whose bucket boundary falls on `tick` (level 0 always does).
fn levels_due(tick: u32) -> u8 {
    let mut mask = 1u8;
    for level in 1..LEVELS as u32 {
        let span_mask = (1u64 << (BITS * level)) - 1;
        if u64::from(tick) & span_mask == 0 {
            mask |= 1 << level;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A model owner: tracks deadlines and positions as the store does.
    struct Owner {
        wheel: Wheel,
        deadline: HashMap<u32, u32>,
        pos: HashMap<u32, (u16, u32)>,
    }

    impl Owner {
        fn new(now: u32) -> Self {
            Owner {
                wheel: Wheel::new(now),
                deadline: HashMap::new(),
                pos: HashMap::new(),
            }
        }
        fn schedule(&mut self, slot: u32, d: u32) {
            self.deadline.insert(slot, d);
            let p = self.wheel.insert(slot, d);
            self.pos.insert(slot, p);
        }
        fn cancel(&mut self, slot: u32) {
            let (b, i) = self.pos.remove(&slot).unwrap();
            self.deadline.remove(&slot);
            if let Some(moved) = self.wheel.remove(b, i) {
                self.pos.get_mut(&moved).unwrap().1 = i;
            }
        }
        /// Runs the wheel to `now`, returning expired slots.
        fn run(&mut self, now: u32) -> Vec<u32> {
            let mut out = Vec::new();
            while let Some(slot) = self.wheel.pop_due(now) {
                self.pos.remove(&slot);
                let d = self.deadline[&slot];
                if d <= now {
                    self.deadline.remove(&slot);
                    out.push(slot);
                } else {
                    let p = self.wheel.insert(slot, d);
                    self.pos.insert(slot, p);
                }
            }
            out.sort_unstable();
            out
        }
    }

    #[test]
    fn expires_exactly_at_deadline() {
        let mut o = Owner::new(100);
        o.schedule(1, 102);
        o.schedule(2, 101);
        o.schedule(3, 5000);
        assert_eq!(o.run(100), Vec::<u32>::new());
        assert_eq!(o.run(101), vec![2]);
        assert_eq!(o.run(101), Vec::<u32>::new());
        assert_eq!(o.run(102), vec![1]);
        assert_eq!(o.run(4999), Vec::<u32>::new());
        assert_eq!(o.run(5000), vec![3]);
        assert!(o.wheel.is_empty());
    }

    #[test]
    fn past_deadlines_expire_on_next_tick() {
        let mut o = Owner::new(50);
        o.schedule(7, 1);
        assert_eq!(o.run(50), Vec::<u32>::new());
        assert_eq!(o.run(51), vec![7]);
    }

    #[test]
    fn removal_keeps_positions_consistent() {
        let mut o = Owner::new(0);
        for s in 0..10 {
            o.schedule(s, 10);
        }
        o.cancel(3);
        o.cancel(0);
        o.cancel(9);
        assert_eq!(o.wheel.len(), 7);
        assert_eq!(o.run(10), vec![1, 2, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn far_deadlines_cascade_through_levels() {
        let mut o = Owner::new(3);
        let far = u32::MAX - 5;
        o.schedule(1, far);
        o.schedule(2, 70_000);
        assert_eq!(o.run(69_999), Vec::<u32>::new());
        assert_eq!(o.run(70_000), vec![2]);
        // Jump close to the far deadline in one run: all cascades happen in order.
        assert_eq!(o.run(far - 1), Vec::<u32>::new());
        assert_eq!(o.run(far), vec![1]);
    }

    #[test]
    fn pop_due_can_stop_and_resume_mid_tick() {
        let mut w = Wheel::new(0);
        for s in 0..100 {
            w.insert(s, 1);
        }
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(w.pop_due(1).unwrap());
        }
        // New work for the same tick joins the batch being drained.
        w.insert(500, 1);
        while let Some(s) = w.pop_due(1) {
            got.push(s);
        }
        assert_eq!(got.len(), 101);
        assert!(w.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a model: each slot expires at the first run whose `now` reaches its deadline.
        /// Not under Miri: safe code only, and proptest's regression file needs the working
        /// directory, which Miri's isolation refuses.
        #[test]
        #[cfg_attr(miri, ignore)]
        fn matches_model(start in 0u32..100_000,
                         ops in proptest::collection::vec((0u32..40, 0u32..300_000, 0u8..4), 1..200)) {
            let mut o = Owner::new(start);
            let mut model: HashMap<u32, u32> = HashMap::new();
            let mut now = start;
            for (slot, offset, kind) in ops {
                match kind {
                    0 | 1 => {
                        if model.contains_key(&slot) { o.cancel(slot); }
                        let d = now.saturating_add(offset % (if kind == 0 { 100 } else { 300_000 })).max(1);
                        o.schedule(slot, d);
                        model.insert(slot, d);
                    }
                    2 => {
                        if model.remove(&slot).is_some() { o.cancel(slot); }
                    }
                    _ => {
                        now = now.saturating_add(offset % 5000);
                        let got = o.run(now);
                        let mut want: Vec<u32> = model.iter().filter(|(_, &d)| d <= now).map(|(&s, _)| s).collect();
                        want.sort_unstable();
                        for s in &want { model.remove(s); }
                        prop_assert_eq!(got, want);
                    }
                }
            }
            prop_assert_eq!(o.wheel.len(), model.len());
        }
    }
}
