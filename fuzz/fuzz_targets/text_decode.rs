//! Text decoder framing: the first byte picks the decoder limits, the rest is the buffer.
//! Checks every property of `ratecache_fuzz::check_framing` (bounded `need`, frames inside
//! the buffer, split anywhere), the request fields of each frame, and the batch's prefetch keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecache_fuzz::text::{check_batch_keys, Text};
use ratecache_fuzz::{check_framing, limits_from};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    check_framing::<Text>(buf, &limits_from(sel));
    check_batch_keys(buf);
});
