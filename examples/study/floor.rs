//! The permutations loss floor, position by position.
//!
//! The first term is a uniformly random n-subset of the 62 characters written in sorted
//! order. Given the previous character y (index 0..62, or y = −1 before the first) at slot
//! i (1-based) of n, the rest of the term is a uniform (n − i + 1)-subset of the characters
//! above y, so
//!
//!   P(c_i = x | c_{i−1} = y) = C(61 − x, n − i) / C(61 − y, n − i + 1),  x > y,
//!
//! and the exact entropy a perfect model pays at slot i is H_i = E_y[H(c_i | c_{i−1} = y)].
//! Σ_i H_i = ln C(62, n) (the chain rule), and every other target has entropy 0, so the
//! floor per predicted token is ln C(62, n) / (T − 1).

use toyformer::tasks::permutations::N_CHARS;

fn choose(n: i64, k: i64) -> f64 {
    if k < 0 || n < k {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64)
}

/// H_1..H_n (nats) of the first-term slots.
pub fn slot_entropies(n: usize) -> Vec<f64> {
    let m = N_CHARS as i64;
    let n = n as i64;
    // dist[y + 1] = P(c_{i−1} = y); y = −1 before slot 1
    let mut dist = vec![0.0f64; (m + 1) as usize];
    dist[0] = 1.0;
    let mut out = Vec::new();
    for i in 1..=n {
        let mut h = 0.0;
        let mut next = vec![0.0f64; (m + 1) as usize];
        for y in -1..m {
            let py = dist[(y + 1) as usize];
            if py == 0.0 {
                continue;
            }
            let denom = choose(m - 1 - y, n - i + 1);
            for x in y + 1..m {
                let p = choose(m - 1 - x, n - i) / denom;
                if p > 0.0 {
                    h -= py * p * p.ln();
                    next[(x + 1) as usize] += py * p;
                }
            }
        }
        out.push(h);
        dist = next;
    }
    out
}
