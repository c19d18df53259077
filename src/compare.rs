//! The tolerance check every parity test uses (GPU kernels, the CPU engine, golden logits
//! against the candle reference): |got − want| ≤ atol + rtol·|want| for every element.
//! A failure names the first bad index with both values and the largest difference over
//! the whole tensor, so one message says both where and how badly.

/// Summary of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Closeness {
    /// Largest |got − want| and where.
    pub max_diff: f64,
    pub max_at: usize,
    /// First index outside the tolerance, with (got, want).
    pub first_bad: Option<(usize, f64, f64)>,
}

/// Compares element by element; `Err` holds a message naming `what` when any element is
/// outside the tolerance or the lengths differ (NaN never passes).
// `!(d <= tol)` on purpose: a NaN difference or tolerance must count as bad.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn check_close<G: Copy + Into<f64>, W: Copy + Into<f64>>(
    what: &str,
    got: &[G],
    want: &[W],
    atol: f64,
    rtol: f64,
) -> Result<Closeness, String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    let mut c = Closeness {
        max_diff: 0.0,
        max_at: 0,
        first_bad: None,
    };
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w): (f64, f64) = (g.into(), w.into());
        let d = (g - w).abs();
        if d > c.max_diff || d.is_nan() && !c.max_diff.is_nan() {
            c.max_diff = d;
            c.max_at = i;
        }
        if !(d <= atol + rtol * w.abs()) && c.first_bad.is_none() {
            c.first_bad = Some((i, g, w));
        }
    }
    match c.first_bad {
        Some((i, g, w)) => Err(format!(
            "{what}: first bad index {i} (got {g}, want {w}; tolerance {atol} + {rtol}·|want|), largest |diff| {:e} at index {}",
            c.max_diff, c.max_at
        )),
        None => Ok(c),
    }
}

/// [`check_close`] that panics with its message (for tests).
#[track_caller]
pub fn assert_close<G: Copy + Into<f64>, W: Copy + Into<f64>>(
    what: &str,
    got: &[G],
    want: &[W],
    atol: f64,
    rtol: f64,
) -> Closeness {
    check_close(what, got, want, atol, rtol).unwrap_or_else(|m| panic!("{m}"))
}

#[cfg(test)]
mod tests {
    use super::check_close;

    #[test]
    fn reports_first_bad_and_largest() {
        let e = check_close(
            "x",
            &[1.0f32, 2.5, 3.0, 10.0],
            &[1.0f64, 2.0, 3.0, 4.0],
            0.1,
            0.0,
        )
        .unwrap_err();
        assert!(
            e.contains("first bad index 1") && e.contains("at index 3"),
            "{e}"
        );
        assert!(check_close("x", &[f32::NAN], &[1.0f64], 1.0, 1.0).is_err());
        assert!(check_close("x", &[1.0f32], &[1.0f64, 2.0], 1.0, 1.0).is_err());
        let ok = check_close("x", &[1.0f32, 2.05], &[1.0f64, 2.0], 0.0, 0.05).unwrap();
        assert_eq!(ok.max_at, 1);
    }
}
