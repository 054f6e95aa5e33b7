//! The ranking functions a streaming query may use over rows: `ROW_NUMBER()`, `RANK()` and
//! `DENSE_RANK()`, as DataFusion window functions so that the SQL planner can type and place
//! them. eddy never evaluates them through DataFusion: the planner reads
//! `<ranking>() OVER (PARTITION BY <window, keys> ORDER BY ...)` filtered on its result as a
//! Window Top-N, which the Top-N operator computes itself (`operators::topn`). Depends on
//! DataFusion's expression types only.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_common::{not_impl_err, Result};
use datafusion_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion_expr::{PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl};

/// Which ranking a Top-N numbers its rows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ranking {
    /// 1, 2, 3, ... (ties are ordered by the whole row, so the choice is repeatable).
    RowNumber,
    /// 1, 1, 3, ...: rows with equal sort keys share a rank, and the next rank skips.
    Rank,
    /// 1, 1, 2, ...: rows with equal sort keys share a rank; no gaps.
    DenseRank,
}

impl Ranking {
    pub const ALL: [Ranking; 3] = [Ranking::RowNumber, Ranking::Rank, Ranking::DenseRank];

    pub fn name(self) -> &'static str {
        match self {
            Ranking::RowNumber => "row_number",
            Ranking::Rank => "rank",
            Ranking::DenseRank => "dense_rank",
        }
    }

    pub fn from_name(name: &str) -> Option<Ranking> {
        Ranking::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RankingUdf {
    ranking: Ranking,
    signature: Signature,
}

impl WindowUDFImpl for RankingUdf {
    fn name(&self) -> &str {
        self.ranking.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(&self, _args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        not_impl_err!("{}() is computed by eddy's Top-N operator, not evaluated as an expression", self.ranking.name())
    }

    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        // Spark types all three as INT; Flink and DataFusion as BIGINT. An Int64 column reads
        // back the same in JSON, Avro and CSV.
        Ok(Arc::new(Field::new(args.name(), DataType::Int64, false)))
    }
}

/// The window function `name`, if it is one of the ranking functions.
pub fn ranking_udf(name: &str) -> Option<Arc<WindowUDF>> {
    static UDFS: OnceLock<Vec<Arc<WindowUDF>>> = OnceLock::new();
    let udfs = UDFS.get_or_init(|| {
        Ranking::ALL
            .into_iter()
            .map(|ranking| Arc::new(WindowUDF::from(RankingUdf { ranking, signature: Signature::nullary(Volatility::Immutable) })))
            .collect()
    });
    let ranking = Ranking::from_name(name)?;
    udfs.iter().find(|u| u.name() == ranking.name()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_rankings_are_known_by_name_in_any_case() {
        for r in Ranking::ALL {
            assert_eq!(ranking_udf(&r.name().to_uppercase()).map(|u| u.name().to_string()), Some(r.name().to_string()));
        }
        assert!(ranking_udf("ntile").is_none());
        assert!(ranking_udf("lag").is_none());
    }
}
