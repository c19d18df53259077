//! A pre-pass over `data.pkl` before candle's unpickler sees it. candle's `Stack`
//! trusts string lengths (it allocates what the file says), clones memoised objects
//! (a few bytes can ask for 2^40 nodes), and drops nested objects recursively (a
//! million-deep tuple overflows the stack). This walk reads the same opcodes with the
//! same argument lengths, tracking only sizes, and refuses what would go wrong.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Bounds on the unpickled object graph: nodes per object, nesting, nodes cloned in all.
const MAX_NODES: u64 = 1 << 20;
const MAX_DEPTH: u32 = 64;
const MAX_WORK: u64 = 1 << 24;

fn werr(msg: impl Into<String>) -> Error {
    Error::Weights(msg.into())
}

/// One value on the simulated pickle stack: how many nodes it holds and how deep it is.
#[derive(Clone, Copy)]
struct Node {
    mark: bool,
    size: u64,
    depth: u32,
}

const LEAF: Node = Node {
    mark: false,
    size: 1,
    depth: 1,
};

fn join(nodes: &[Node]) -> Node {
    nodes.iter().fold(LEAF, |n, c| Node {
        mark: false,
        size: n.size.saturating_add(c.size),
        depth: n.depth.max(c.depth + 1),
    })
}

/// Walks the pickle opcodes candle's `Stack` understands, with the same argument
/// lengths, simulating only object sizes. Rejects truncation, string lengths past the
/// end, LONG1 wider than 8 bytes, unknown opcodes, and object graphs that would be too
/// big or too deep (memo-doubling "pickle bombs", million-deep nesting).
// long: one match arm per pickle opcode sharing the walk's state; a table reads best whole
pub(crate) fn check_pickle(b: &[u8]) -> Result<()> {
    let mut pos = 0usize;
    let mut stack: Vec<Node> = Vec::new();
    let mut memo: HashMap<u32, Node> = HashMap::new();
    let mut work: u64 = 0;
    let bad = |at: usize, what: &str| werr(format!("data.pkl is malformed: {what} at byte {at}"));
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let s = pos
            .checked_add(n)
            .and_then(|end| b.get(*pos..end))
            .ok_or_else(|| bad(*pos, "unexpected end"))?;
        *pos += n;
        Ok(s)
    };
    loop {
        let at = pos;
        let op = take(&mut pos, 1)?[0];
        let pop = |stack: &mut Vec<Node>| {
            stack
                .pop()
                .ok_or_else(|| bad(at, "pop from an empty stack"))
        };
        let pop_mark = |stack: &mut Vec<Node>| -> Result<Vec<Node>> {
            let i = stack
                .iter()
                .rposition(|n| n.mark)
                .ok_or_else(|| bad(at, "no MARK"))?;
            let v = stack.split_off(i + 1);
            stack.pop();
            Ok(v)
        };
        let u32_arg = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        match op {
            0x80 => drop(take(&mut pos, 1)?),
            b'c' => {
                for _ in 0..2 {
                    let rest = b.get(pos..).unwrap_or(&[]);
                    let nl = rest
                        .iter()
                        .position(|&c| c == b'\n')
                        .ok_or_else(|| bad(at, "GLOBAL without newline"))?;
                    pos += nl + 1;
                }
                stack.push(LEAF);
            }
            b'K' | b'M' | b'J' | b'G' => {
                let n = match op {
                    b'K' => 1,
                    b'M' => 2,
                    b'J' => 4,
                    _ => 8,
                };
                take(&mut pos, n)?;
                stack.push(LEAF);
            }
            b'X' => {
                let n = u32_arg(take(&mut pos, 4)?) as usize;
                take(&mut pos, n)?;
                stack.push(LEAF);
            }
            0x8a => {
                let n = take(&mut pos, 1)?[0] as usize;
                if n > 8 {
                    return Err(bad(at, "LONG1 wider than 8 bytes"));
                }
                take(&mut pos, n)?;
                stack.push(LEAF);
            }
            // None, True, False, {}, (), [], and 'd' (which candle reads as an empty dict)
            b'N' | 0x88 | 0x89 | b'}' | b'd' | b')' | b']' => stack.push(LEAF),
            b'(' => stack.push(Node { mark: true, ..LEAF }),
            b'Q' | 0x85 | 0x86 | 0x87 | b'b' | b'R' | 0x81 => {
                let n = match op {
                    b'Q' | 0x85 => 1,
                    0x87 => 3,
                    _ => 2,
                };
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(pop(&mut stack)?);
                }
                stack.push(join(&v));
            }
            b't' => {
                let v = pop_mark(&mut stack)?;
                stack.push(join(&v));
            }
            b'a' | b's' | b'e' | b'u' => {
                let mut v = match op {
                    b'a' => vec![pop(&mut stack)?],
                    b's' => vec![pop(&mut stack)?, pop(&mut stack)?],
                    _ => pop_mark(&mut stack)?,
                };
                v.push(pop(&mut stack)?);
                stack.push(join(&v));
            }
            b'h' | b'j' => {
                let id = if op == b'h' {
                    take(&mut pos, 1)?[0] as u32
                } else {
                    u32_arg(take(&mut pos, 4)?)
                };
                let n = *memo
                    .get(&id)
                    .ok_or_else(|| bad(at, "memo get of a missing id"))?;
                work = work.saturating_add(n.size);
                stack.push(n);
            }
            b'q' | b'r' => {
                let id = if op == b'q' {
                    take(&mut pos, 1)?[0] as u32
                } else {
                    u32_arg(take(&mut pos, 4)?)
                };
                let n = *stack
                    .last()
                    .ok_or_else(|| bad(at, "memo put from an empty stack"))?;
                work = work.saturating_add(n.size);
                memo.insert(id, n);
            }
            b'.' => return Ok(()),
            other => return Err(bad(at, &format!("unsupported opcode 0x{other:02x}"))),
        }
        if let Some(top) = stack.last() {
            if top.size > MAX_NODES || top.depth > MAX_DEPTH || work > MAX_WORK {
                return Err(bad(at, "object graph too large or too deeply nested"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickle_guard() {
        // memo doubling: x = (x, x) forty times
        let mut p = vec![0x80, 2, b')', b'q', 0];
        for _ in 0..40 {
            p.extend_from_slice(&[b'h', 0, b'h', 0, 0x86, b'q', 0]);
        }
        p.push(b'.');
        assert!(check_pickle(&p).is_err());
        // a million nested 1-tuples
        let mut p = vec![b')'];
        p.extend(std::iter::repeat_n(0x85, 1_000_000));
        p.push(b'.');
        assert!(check_pickle(&p).is_err());
        // a string longer than the file, a wide LONG1, truncation
        assert!(check_pickle(&[b'X', 0xff, 0xff, 0xff, 0xff, b'.']).is_err());
        assert!(check_pickle(&[0x8a, 200, 0, b'.']).is_err());
        assert!(check_pickle(&[0x80]).is_err());
        assert!(check_pickle(b"}.").is_ok());
    }
}
