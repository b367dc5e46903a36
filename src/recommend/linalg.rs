//! The one piece of dense linear algebra the models need: the inverse of a symmetric
//! positive-definite matrix (EASE's regularised Gram matrix), in place.
//!
//! Block Gauss–Jordan (the sweep operator applied a block of pivots at a time): each
//! step is two matrix products done by `gemm` on both cores, so a 3,600 × 3,600 matrix
//! inverts in seconds. No pivoting is needed: every pivot block is a Schur complement of
//! a positive-definite matrix, itself positive definite; a pivot that is not positive
//! means the input was not, and is reported.

use gemm::Parallelism;

const BLOCK: usize = 128;

/// The matrix was not positive definite (a pivot at `index` was not positive).
#[derive(Debug, thiserror::Error)]
#[error("matrix is not positive definite (pivot {index})")]
pub struct NotPositiveDefinite {
    pub index: usize,
}

/// Replaces `a` (row-major, `n` × `n`, symmetric positive definite) by its inverse.
pub fn invert_spd(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    assert_eq!(a.len(), n * n, "matrix size");
    let parallelism = Parallelism::Rayon(0);
    let mut pivot = vec![0.0f64; BLOCK * BLOCK];
    let mut column = vec![0.0f64; n * BLOCK];
    let mut swept_column = vec![0.0f64; n * BLOCK];
    let mut row = vec![0.0f64; BLOCK * n];
    for k0 in (0..n).step_by(BLOCK) {
        let b = BLOCK.min(n - k0);
        let pivot = &mut pivot[..b * b];
        for i in 0..b {
            pivot[i * b..(i + 1) * b].copy_from_slice(&a[(k0 + i) * n + k0..(k0 + i) * n + k0 + b]);
        }
        invert_small(pivot, b).map_err(|index| NotPositiveDefinite { index: k0 + index })?;
        let column = &mut column[..n * b];
        for i in 0..n {
            column[i * b..(i + 1) * b].copy_from_slice(&a[i * n + k0..i * n + k0 + b]);
        }
        let row = &mut row[..b * n];
        let swept_column = &mut swept_column[..n * b];
        // SAFETY: every pointer addresses a live buffer of the stated shape and strides,
        // and no destination overlaps a source of the same call.
        unsafe {
            // row = pivot⁻¹ · A[K, :]
            gemm::gemm(
                b,
                n,
                b,
                row.as_mut_ptr(),
                1,
                n as isize,
                false,
                pivot.as_ptr(),
                1,
                b as isize,
                a.as_ptr().add(k0 * n),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
            // A = A − A[:, K] · row
            gemm::gemm(
                n,
                n,
                b,
                a.as_mut_ptr(),
                1,
                n as isize,
                true,
                column.as_ptr(),
                1,
                b as isize,
                row.as_ptr(),
                1,
                n as isize,
                1.0,
                -1.0,
                false,
                false,
                false,
                parallelism,
            );
            // swept_column = −A[:, K] · pivot⁻¹
            gemm::gemm(
                n,
                b,
                b,
                swept_column.as_mut_ptr(),
                1,
                b as isize,
                false,
                column.as_ptr(),
                1,
                b as isize,
                pivot.as_ptr(),
                1,
                b as isize,
                0.0,
                -1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        for i in 0..b {
            a[(k0 + i) * n..(k0 + i + 1) * n].copy_from_slice(&row[i * n..(i + 1) * n]);
        }
        for i in (0..k0).chain(k0 + b..n) {
            a[i * n + k0..i * n + k0 + b].copy_from_slice(&swept_column[i * b..(i + 1) * b]);
        }
        for i in 0..b {
            a[(k0 + i) * n + k0..(k0 + i) * n + k0 + b].copy_from_slice(&pivot[i * b..(i + 1) * b]);
        }
    }
    Ok(())
}

/// The scalar sweep of a small block; `Err(i)` when pivot `i` is not positive.
fn invert_small(a: &mut [f64], n: usize) -> Result<(), usize> {
    for k in 0..n {
        let p = a[k * n + k];
        if p.is_nan() || p <= 1e-12 {
            return Err(k);
        }
        let inv = 1.0 / p;
        for j in 0..n {
            if j != k {
                a[k * n + j] *= inv;
            }
        }
        for i in 0..n {
            if i == k {
                continue;
            }
            let f = a[i * n + k];
            if f == 0.0 {
                continue;
            }
            for j in 0..n {
                if j != k {
                    a[i * n + j] -= f * a[k * n + j];
                }
            }
            a[i * n + k] = -f * inv;
        }
        a[k * n + k] = inv;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    c[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn inverts_a_positive_definite_matrix_larger_than_a_block() {
        let n = BLOCK * 2 + 37;
        // A = M·Mᵀ + n·I, with M from a fixed sequence: symmetric positive definite.
        let mut seed = 12345u64;
        let m: Vec<f64> = (0..n * n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>();
            }
            a[i * n + i] += n as f64 * 0.1;
        }
        let original = a.clone();
        invert_spd(&mut a, n).unwrap();
        let identity = product(&original, &a, n);
        for i in 0..n {
            for j in 0..n {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (identity[i * n + j] - expected).abs() < 1e-8,
                    "({i}, {j}) = {}",
                    identity[i * n + j]
                );
            }
        }
    }

    #[test]
    fn refuses_a_matrix_that_is_not_positive_definite() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(invert_spd(&mut a, 2).unwrap_err().index, 1);
    }
}
