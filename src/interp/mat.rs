//! A small dense row-major f32 matrix for circuit analysis (matrices here are at most a
//! few thousand on a side). Products go through candle; eigenvalues through nalgebra (f64).

use crate::error::{Error, Result};

/// Serialises as `{rows, cols, data}` (data row-major).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    /// (rows, cols) row-major
    pub data: Vec<f32>,
}

impl Mat {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Backend(format!(
                "matrix {rows}x{cols} given {} values",
                data.len()
            )));
        }
        Ok(Mat { rows, cols, data })
    }

    /// (rows, cols) zeros.
    pub fn zeros(rows: usize, cols: usize) -> Mat {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Entry (r, c) = f(r, c).
    pub fn from_fn(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f32) -> Mat {
        let data = (0..rows * cols)
            .map(|i| f(i / cols.max(1), i % cols.max(1)))
            .collect();
        Mat { rows, cols, data }
    }

    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    pub fn transpose(&self) -> Mat {
        let mut d = vec![0.0; self.data.len()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                d[c * self.rows + r] = self.at(r, c);
            }
        }
        Mat {
            rows: self.cols,
            cols: self.rows,
            data: d,
        }
    }

    /// self (R, K) @ other (K, C) → (R, C), through candle's CPU matmul (f32, blocked
    /// and vectorised: several times faster than a plain loop, in wasm too).
    pub fn matmul(&self, other: &Mat) -> Result<Mat> {
        if self.cols != other.rows {
            return Err(Error::Backend(format!(
                "matmul {}x{} @ {}x{}",
                self.rows, self.cols, other.rows, other.cols
            )));
        }
        if self.rows == 0 || other.cols == 0 || self.cols == 0 {
            return Ok(Mat::zeros(self.rows, other.cols));
        }
        let dev = candle_core::Device::Cpu;
        let a = candle_core::Tensor::from_slice(&self.data, (self.rows, self.cols), &dev)?;
        let b = candle_core::Tensor::from_slice(&other.data, (other.rows, other.cols), &dev)?;
        let data = a.matmul(&b)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Mat {
            rows: self.rows,
            cols: other.cols,
            data,
        })
    }

    /// The top-left (r, c) block.
    pub fn block(&self, r: usize, c: usize) -> Mat {
        let data = (0..r).flat_map(|i| self.row(i)[..c].to_vec()).collect();
        Mat {
            rows: r,
            cols: c,
            data,
        }
    }

    /// Index of the largest entry of each row.
    pub fn row_argmax(&self) -> Vec<usize> {
        (0..self.rows)
            .map(|r| crate::train::eval::argmax(self.row(r)) as usize)
            .collect()
    }

    /// The block of rows `r0..r1` and columns `c0..c1`.
    pub fn sub(&self, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> Mat {
        let data = rows
            .clone()
            .flat_map(|i| self.row(i)[cols.clone()].to_vec())
            .collect();
        Mat {
            rows: rows.len(),
            cols: cols.len(),
            data,
        }
    }

    /// [self; other]: rows of `other` below those of `self` (same number of columns).
    pub fn vstack(&self, other: &Mat) -> Result<Mat> {
        if self.cols != other.cols {
            return Err(Error::Backend(format!(
                "vstack {}x{} on {}x{}",
                self.rows, self.cols, other.rows, other.cols
            )));
        }
        let mut data = self.data.clone();
        data.extend_from_slice(&other.data);
        Ok(Mat {
            rows: self.rows + other.rows,
            cols: self.cols,
            data,
        })
    }

    /// Elementwise self + other (same shape).
    pub fn add(&self, other: &Mat) -> Result<Mat> {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return Err(Error::Backend(format!(
                "add {}x{} + {}x{}",
                self.rows, self.cols, other.rows, other.cols
            )));
        }
        Ok(Mat {
            rows: self.rows,
            cols: self.cols,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| a + b)
                .collect(),
        })
    }

    /// Frobenius norm sqrt(Σ x²), accumulated in f64.
    pub fn frobenius(&self) -> f64 {
        self.data
            .iter()
            .map(|&x| x as f64 * x as f64)
            .sum::<f64>()
            .sqrt()
    }

    pub fn scale(mut self, s: f32) -> Mat {
        self.data.iter_mut().for_each(|x| *x *= s);
        self
    }

    /// Complex eigenvalues (re, im) of a square matrix (nalgebra's Schur decomposition).
    pub fn eigenvalues(&self) -> Result<Vec<(f64, f64)>> {
        if self.rows != self.cols {
            return Err(Error::Backend(format!(
                "eigenvalues of a non-square {}x{} matrix",
                self.rows, self.cols
            )));
        }
        let m = nalgebra::DMatrix::from_fn(self.rows, self.cols, |r, c| self.at(r, c) as f64);
        Ok(m.complex_eigenvalues()
            .iter()
            .map(|z| (z.re, z.im))
            .collect())
    }
}
