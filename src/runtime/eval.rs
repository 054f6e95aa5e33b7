//! A side's filter, stateless steps (a subquery's projection, explode) and expressions over a
//! batch, with a row-by-row fallback so that one row an expression fails on (an invalid regular
//! expression in its data, say) is set aside with the reason instead of failing its whole batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::datatypes::SchemaRef;

use crate::expr::{true_rows, Scalar};
use crate::sql::Stage;
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
pub fn evaluate(batch: &RecordBatch, filter: Option<&Scalar>, stages: &[Stage], exprs: &[Scalar]) -> (Evaluated, Vec<(u32, String)>) {
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
    let (rows, kept) = if stages.is_empty() { (rows, kept) } else { apply_stages(kept, rows, stages, &mut failed) };
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

/// Runs `stages` over `batch`, whose row i came from input row `rows[i]`.
fn apply_stages(mut batch: RecordBatch, mut rows: Vec<u32>, stages: &[Stage], failed: &mut Vec<(u32, String)>) -> (Vec<u32>, RecordBatch) {
    for stage in stages {
        let step = |b: &RecordBatch| -> Result<(RecordBatch, Vec<u32>), String> {
            match stage {
                Stage::Filter(f) => {
                    let keep = true_rows(f.eval(b).map_err(|e| format!("{}: {e}", f.text))?.as_ref());
                    Ok((take(b, &keep), keep))
                }
                Stage::Project { exprs, schema } => {
                    let arrays =
                        exprs.iter().map(|e| e.eval(b).map_err(|err| format!("{}: {err}", e.text))).collect::<Result<Vec<_>, _>>()?;
                    let out = RecordBatch::try_new_with_options(
                        schema.clone(),
                        arrays,
                        &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                    )
                    .map_err(|e| e.to_string())?;
                    Ok((out, (0..b.num_rows() as u32).collect()))
                }
                Stage::Unnest { column, schema } => unnest(b, *column, schema),
            }
        };
        match step(&batch) {
            Ok((out, from)) => {
                rows = from.iter().map(|&i| rows[i as usize]).collect();
                batch = out;
            }
            Err(_) => {
                // Row by row: keep what each row gives, set aside the rows that fail.
                let mut parts = Vec::new();
                let mut new_rows = Vec::new();
                for (i, &row) in rows.iter().enumerate() {
                    match step(&batch.slice(i, 1)) {
                        Ok((out, from)) => {
                            new_rows.extend(from.iter().map(|_| row));
                            parts.push(out);
                        }
                        Err(why) => failed.push((row, why)),
                    }
                }
                let schema = parts.first().map_or_else(|| batch.schema(), RecordBatch::schema);
                batch = arrow::compute::concat_batches(&schema, &parts).unwrap_or_else(|_| RecordBatch::new_empty(schema));
                rows = new_rows;
            }
        }
    }
    (rows, batch)
}

/// One row per element of the list in `column`; NULL and empty lists give no row.
fn unnest(b: &RecordBatch, column: usize, schema: &SchemaRef) -> Result<(RecordBatch, Vec<u32>), String> {
    let list = b.column(column).as_list_opt::<i32>().ok_or("explode() needs an array")?;
    let mut from: Vec<u32> = Vec::new();
    let mut items: Vec<u32> = Vec::new();
    let offsets = list.value_offsets();
    for i in 0..list.len() {
        if list.is_null(i) {
            continue;
        }
        for j in offsets[i]..offsets[i + 1] {
            from.push(i as u32);
            items.push(j as u32);
        }
    }
    let repeat = UInt32Array::from(from.clone());
    let item_indices = UInt32Array::from(items);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
    for (c, a) in b.columns().iter().enumerate() {
        let out = if c == column {
            arrow::compute::take(list.values().as_ref(), &item_indices, None)
        } else {
            arrow::compute::take(a.as_ref(), &repeat, None)
        };
        columns.push(out.map_err(|e| e.to_string())?);
    }
    let out = RecordBatch::try_new_with_options(Arc::clone(schema), columns, &RecordBatchOptions::new().with_row_count(Some(from.len())))
        .map_err(|e| e.to_string())?;
    Ok((out, from))
}
