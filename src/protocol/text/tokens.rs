//! memcached's tokenizer (`tokenize_command`), byte for byte: tokens are split on spaces only,
//! a NUL ends the line, and at most 23 tokens are read before the rest is left for multi-get.

/// memcached's MAX_TOKENS: 23 tokens plus the terminal one.
const MAX_TOKENS: usize = 24;

/// The tokens of one line as memcached's `tokenize_command` produces them.
pub(super) struct Tokens<'a> {
    pub(super) line: &'a [u8],
    pub(super) toks: [&'a [u8]; MAX_TOKENS - 1],
    pub(super) len: usize,
    /// Unread rest of the line after the 23rd token, if any.
    pub(super) rest: Option<usize>,
}

impl<'a> Tokens<'a> {
    pub(super) fn new(line: &'a [u8]) -> Self {
        let line = match memchr::memchr(0, line) {
            Some(nul) => &line[..nul],
            None => line,
        };
        let mut t = Tokens {
            line,
            toks: [&[]; MAX_TOKENS - 1],
            len: 0,
            rest: None,
        };
        let mut start = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                if start != i {
                    t.toks[t.len] = &line[start..i];
                    t.len += 1;
                    if t.len == MAX_TOKENS - 1 {
                        if i + 1 < line.len() {
                            t.rest = Some(i + 1);
                        }
                        return t;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        if start != i {
            t.toks[t.len] = &line[start..i];
            t.len += 1;
        }
        t
    }

    /// memcached's `ntokens`: real tokens plus the terminal token.
    pub(super) fn ntokens(&self) -> usize {
        self.len + 1
    }

    pub(super) fn get(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            self.toks[i]
        } else {
            &[]
        }
    }

    /// memcached's `set_noreply_maybe`: the last real token is `noreply`.
    pub(super) fn noreply(&self) -> bool {
        self.len >= 1 && self.toks[self.len - 1] == b"noreply"
    }

    /// The line from token `i` on.
    pub(super) fn from(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            let off = self.toks[i].as_ptr() as usize - self.line.as_ptr() as usize;
            &self.line[off..]
        } else {
            match self.rest {
                Some(off) => &self.line[off..],
                None => &[],
            }
        }
    }
}

/// The keys of a multi-get: space-separated tokens of the rest of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys<'a> {
    rest: &'a [u8],
}

impl<'a> Keys<'a> {
    /// Keys from a space-separated list.
    pub fn new(rest: &'a [u8]) -> Self {
        Keys { rest }
    }

    /// The part of the list not yet iterated (a multi-get's resume point).
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b' ')?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_matches_memcached() {
        let t = Tokens::new(b"  get  a b ");
        assert_eq!(t.ntokens(), 4);
        assert_eq!(t.get(1), b"a");
        let line = (0..30)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let t = Tokens::new(line.as_bytes());
        assert_eq!(t.ntokens(), 24);
        assert_eq!(t.from(23), b"k23 k24 k25 k26 k27 k28 k29");
        let t = Tokens::new(b"get a\0b c");
        assert_eq!(t.ntokens(), 3);
    }

    #[test]
    fn keys_resume_from_their_rest() {
        let mut k = Keys::new(b" a  bb c");
        assert_eq!(k.next(), Some(&b"a"[..]));
        let rest = k.rest();
        assert_eq!(Keys::new(rest).collect::<Vec<_>>(), vec![&b"bb"[..], b"c"]);
        assert_eq!(k.count(), 2);
    }
}
