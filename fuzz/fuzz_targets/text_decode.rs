//! Text decoder framing: the first byte picks the decoder limits, the rest is the buffer.
//! Checks every property of `ratecache_fuzz::check_framing` (bounded `need`, frames inside
//! the buffer, split anywhere) and the request fields of each frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratecache_fuzz::{check_framing, limits_from, text::Text};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, buf)) = data.split_first() else {
        return;
    };
    check_framing::<Text>(buf, &limits_from(sel));
});
