//! xorshift64*: a small, fast, seedable random source with no dependency, for the churn and
//! timer tests (`#[path = "support/rng.rs"] mod rng;`).

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n` for tests (`n > 0`).
    #[allow(dead_code)] // not every test binary draws bounded numbers
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
