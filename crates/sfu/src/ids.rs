//! LiveKit-style ids (`PA_…`, `TR_…`, `RM_…`), drawn from a seeded generator so that the core
//! stays deterministic: the runtime seeds it from the OS, tests seed it with a constant.

/// xorshift64*: small, fast, and good enough for ids that only need to be unique per room.
#[derive(Debug, Clone)]
pub(crate) struct IdGen(u64);

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl IdGen {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `prefix` followed by 12 base-62 characters.
    pub(crate) fn sid(&mut self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 12);
        s.push_str(prefix);
        let mut v = self.next_u64();
        for _ in 0..12 {
            if v < 62 {
                v = self.next_u64();
            }
            s.push(ALPHABET[(v % 62) as usize] as char);
            v /= 62;
        }
        s
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_have_the_prefix_and_differ() {
        let mut g = IdGen::new(7);
        let a = g.sid("PA_");
        let b = g.sid("PA_");
        assert!(a.starts_with("PA_") && a.len() == 15);
        assert_ne!(a, b);
        assert_eq!(IdGen::new(7).sid("PA_"), a, "deterministic for a seed");
    }
}
