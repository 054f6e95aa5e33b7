//! One SELECT over bounded tables known by their schemas (the result tables of a running
//! pipeline, for `eddy query` and `/query`): parsed in Spark's dialect and planned by
//! DataFusion with the pipeline's function library, like a query of a pipeline, but as a
//! batch query: ORDER BY and LIMIT are allowed, and nothing streams. The caller executes the
//! logical plan. Depends on the planner's context.

use std::collections::HashMap;
use std::ops::ControlFlow;

use arrow::datatypes::SchemaRef;
use datafusion_expr::LogicalPlan;
use datafusion_sql::sqlparser::ast::{self, Spanned};
use datafusion_sql::sqlparser::parser::Parser;

use super::context::Provider;
use super::dialect::SparkDialect;
use super::error::SqlError;
use super::logical::logical_plan;

/// A parsed batch query and the tables it reads.
pub struct BatchQuery {
    statement: ast::Statement,
    pub tables: Vec<String>,
}

impl BatchQuery {
    /// Parses one SELECT statement and finds the tables it reads.
    pub fn parse(sql: &str) -> Result<BatchQuery, SqlError> {
        let statements = Parser::parse_sql(&SparkDialect::default(), sql).map_err(|e| SqlError::from_parser(e, sql))?;
        let statement = match statements.as_slice() {
            [one] => one.clone(),
            [] => return Err(SqlError::new("the query is empty; write one SELECT statement")),
            [_, second, ..] => return Err(SqlError::at(second.span(), "one SELECT statement at a time")),
        };
        if !matches!(statement, ast::Statement::Query(_)) {
            return Err(SqlError::at(statement.span(), "only SELECT queries can be asked of a result table"));
        }
        let mut tables: Vec<String> = Vec::new();
        let _ = ast::visit_relations(&statement, |name: &ast::ObjectName| {
            let text = name.0.last().map(|p| p.to_string().trim_matches('`').to_string()).unwrap_or_default();
            if !tables.contains(&text) {
                tables.push(text);
            }
            ControlFlow::<()>::Continue(())
        });
        // A CTE's name is a relation too: only names the statement does not define are tables.
        if let ast::Statement::Query(q) = &statement {
            if let Some(with) = &q.with {
                tables.retain(|t| !with.cte_tables.iter().any(|c| c.alias.name.value == *t));
            }
        }
        if tables.is_empty() {
            return Err(SqlError::new("the query reads no table: name a query of the pipeline in FROM"));
        }
        Ok(BatchQuery { statement, tables })
    }

    /// Plans the query over `schemas` (table name → its columns).
    pub fn plan(&self, schemas: HashMap<String, SchemaRef>) -> Result<LogicalPlan, SqlError> {
        logical_plan(self.statement.clone(), &Provider::new(schemas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tables_a_query_reads_but_not_its_ctes() {
        let q = BatchQuery::parse("WITH t AS (SELECT * FROM counts) SELECT action, sum(count) FROM t GROUP BY action").unwrap();
        assert_eq!(q.tables, vec!["counts".to_string()]);
        assert!(BatchQuery::parse("SELECT 1").is_err(), "a query of no table is refused");
        let e = BatchQuery::parse("DELETE FROM counts").err().unwrap();
        assert!(e.to_string().contains("only SELECT"), "{e}");
    }
}
