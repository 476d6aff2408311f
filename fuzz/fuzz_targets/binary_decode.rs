//! Binary decoder framing: the first byte picks the decoder limits, the rest is the buffer.
//! Checks every property of `ratecache_fuzz::check_framing` (bounded `need`, frames inside
//! the buffer, split anywhere), each frame's command against its header, and the batch's
//! prefetch keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecache_fuzz::binary::{check_batch_keys, Binary};
use ratecache_fuzz::{check_framing, limits_from};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    check_framing::<Binary>(buf, &limits_from(sel));
    check_batch_keys(buf);
});
