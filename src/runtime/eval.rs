//! A side's filter and expressions over a batch, with a row-by-row fallback so that one row an
//! expression fails on (an invalid regular expression in its data, say) is set aside with the
//! reason instead of failing its whole batch.

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};

use crate::expr::{true_rows, Scalar};
use crate::types::arrays::ColumnReader;

/// A batch after the side's filter and expressions: the rows kept (as indices of the batch
/// the task was given), and each expression's values over them.
pub struct Evaluated {
    pub rows: Vec<u32>,
    /// The kept rows of the batch.
    pub batch: RecordBatch,
    pub arrays: Vec<ArrayRef>,
}

/// Keeps the rows of `batch` that pass `filter`, then evaluates `exprs` over them. A batch an
/// expression fails on is evaluated row by row; rows that fail are returned with the reason.
pub fn evaluate(batch: &RecordBatch, filter: Option<&Scalar>, exprs: &[Scalar]) -> (Evaluated, Vec<(u32, String)>) {
    let mut failed = Vec::new();
    let all: Vec<u32> = (0..batch.num_rows() as u32).collect();
    let (rows, kept) = match filter {
        None => (all, batch.clone()),
        Some(f) => match f.eval(batch) {
            Ok(mask) => {
                let rows = true_rows(mask.as_ref());
                let kept = take(batch, &rows);
                (rows, kept)
            }
            Err(_) => {
                let mut rows = Vec::new();
                for i in all {
                    match f.eval(&batch.slice(i as usize, 1)) {
                        Ok(m) if ColumnReader::new(m.as_ref()).is_true(0) => rows.push(i),
                        Ok(_) => {}
                        Err(e) => failed.push((i, format!("WHERE {}: {e}", f.text))),
                    }
                }
                let kept = take(batch, &rows);
                (rows, kept)
            }
        },
    };
    match exprs.iter().map(|e| e.eval(&kept)).collect::<Result<Vec<_>, _>>() {
        Ok(arrays) => (Evaluated { rows, batch: kept, arrays }, failed),
        Err(_) => {
            // Row by row: keep the rows every expression takes.
            let mut good: Vec<u32> = Vec::new();
            let mut positions: Vec<u32> = Vec::new();
            for (pos, &row) in rows.iter().enumerate() {
                let one = kept.slice(pos, 1);
                match exprs.iter().find_map(|e| e.eval(&one).err().map(|err| format!("{}: {err}", e.text))) {
                    None => {
                        good.push(row);
                        positions.push(pos as u32);
                    }
                    Some(why) => failed.push((row, why)),
                }
            }
            let kept = take(&kept, &positions);
            let arrays = exprs.iter().filter_map(|e| e.eval(&kept).ok()).collect();
            (Evaluated { rows: good, batch: kept, arrays }, failed)
        }
    }
}

/// Rows `rows` of `batch`.
pub fn take(batch: &RecordBatch, rows: &[u32]) -> RecordBatch {
    if rows.len() == batch.num_rows() {
        return batch.clone();
    }
    let indices = UInt32Array::from(rows.to_vec());
    arrow::compute::take_record_batch(batch, &indices).unwrap_or_else(|_| batch.slice(0, 0))
}
