//! DataFusion's aggregate functions (and datafusion-spark's) as eddy's row accumulators:
//! created from the planned call, updated row by row, evaluated at emission, and kept in the changelog as
//! their intermediate state (`Accumulator::state`, restored with `merge_batch`). DataFusion
//! allows `state` and `evaluate` to consume an accumulator, so both are taken from a copy
//! rebuilt from the state; that costs an allocation per call, paid only by these aggregates.

use std::cell::RefCell;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, FieldRef, Schema};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::{Accumulator as DfAccumulator, AggregateUDF};
use datafusion_physical_expr::expressions::{Column, Literal};
use datafusion_physical_expr::PhysicalExpr;

use datafusion_common::ScalarValue;

use crate::types::arrays::{value_at, values_to_array};
use crate::types::{DataType, Value};

/// Everything needed to create accumulators of one call.
#[derive(Debug)]
pub struct UdafFactory {
    func: Arc<AggregateUDF>,
    schema: Schema,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    fields: Vec<FieldRef>,
    return_field: FieldRef,
    distinct: bool,
    /// `IGNORE NULLS` was written after the call.
    ignore_nulls: bool,
    name: String,
    arg_types: Vec<DataType>,
    state_types: Vec<DataType>,
}

impl UdafFactory {
    /// The factory of a call of `func` with arguments of `arg_types` (`literals[i]` for the
    /// literal ones), named `text`; checks that an accumulator can be made.
    pub fn new(
        func: Arc<AggregateUDF>,
        distinct: bool,
        ignore_nulls: bool,
        literals: &[Option<ScalarValue>],
        arg_types: &[DataType],
        result_type: &DataType,
        text: &str,
    ) -> Result<UdafFactory, String> {
        let fields: Vec<FieldRef> =
            arg_types.iter().enumerate().map(|(i, t)| Arc::new(Field::new(format!("a{i}"), t.clone(), true))).collect();
        let schema = Schema::new(fields.clone());
        let exprs: Vec<Arc<dyn PhysicalExpr>> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| -> Arc<dyn PhysicalExpr> {
                match literals.get(i).cloned().flatten() {
                    Some(v) => Arc::new(Literal::new(v)),
                    None => Arc::new(Column::new(f.name(), i)),
                }
            })
            .collect();
        let return_field: FieldRef = Arc::new(Field::new(text, result_type.clone(), true));
        let state_fields = func
            .state_fields(StateFieldsArgs {
                name: text,
                input_fields: &fields,
                return_field: return_field.clone(),
                ordering_fields: &[],
                is_distinct: distinct,
            })
            .map_err(|e| crate::expr::registry::clean_error(&e))?;
        let factory = UdafFactory {
            func,
            schema,
            exprs,
            fields,
            return_field,
            distinct,
            ignore_nulls,
            name: text.to_string(),
            arg_types: arg_types.to_vec(),
            state_types: state_fields.iter().map(|f| f.data_type().clone()).collect(),
        };
        factory.create()?;
        Ok(factory)
    }

    fn create(&self) -> Result<Box<dyn DfAccumulator>, String> {
        self.func
            .accumulator(AccumulatorArgs {
                return_field: self.return_field.clone(),
                schema: &self.schema,
                ignore_nulls: self.ignore_nulls,
                order_bys: &[],
                is_reversed: false,
                name: &self.name,
                is_distinct: self.distinct,
                exprs: &self.exprs,
                expr_fields: &self.fields,
            })
            .map_err(|e| crate::expr::registry::clean_error(&e))
    }

    /// An accumulator holding `state` (as DataFusion gave it), or an empty one.
    fn with_scalars(&self, state: &[ScalarValue]) -> Option<Box<dyn DfAccumulator>> {
        let mut acc = self.create().ok()?;
        let arrays: Vec<ArrayRef> = state.iter().map(|v| v.to_array()).collect::<Result<_, _>>().ok()?;
        acc.merge_batch(&arrays).ok()?;
        Some(acc)
    }

    /// An accumulator holding `state` (values of the state fields), or an empty one.
    fn with_state(&self, state: Option<&[Value]>) -> Option<Box<dyn DfAccumulator>> {
        let mut acc = self.create().ok()?;
        if let Some(state) = state {
            let arrays: Vec<ArrayRef> =
                self.state_types.iter().zip(state).map(|(t, v)| values_to_array(std::iter::once(v), t)).collect::<Result<_, _>>().ok()?;
            acc.merge_batch(&arrays).ok()?;
        }
        Some(acc)
    }
}

/// One group's accumulator of a DataFusion aggregate.
pub struct UdafState {
    factory: Arc<UdafFactory>,
    acc: RefCell<Option<Box<dyn DfAccumulator>>>,
}

impl UdafState {
    pub fn new(factory: Arc<UdafFactory>) -> UdafState {
        let acc = factory.with_state(None);
        UdafState { factory, acc: RefCell::new(acc) }
    }

    /// Adds one row's arguments.
    pub fn update(&mut self, args: &[Value]) {
        let arrays: Result<Vec<ArrayRef>, _> = self
            .factory
            .arg_types
            .iter()
            .zip(args.iter().chain(std::iter::repeat(&Value::Null)))
            .map(|(t, v)| values_to_array(std::iter::once(v), t))
            .collect();
        if let (Ok(arrays), Some(acc)) = (arrays, self.acc.get_mut().as_mut()) {
            let _ = acc.update_batch(&arrays);
        }
    }

    /// The intermediate state as DataFusion gives it, leaving the accumulator as it was.
    fn scalars(&self) -> Vec<ScalarValue> {
        let mut slot = self.acc.borrow_mut();
        let Some(acc) = slot.as_mut() else { return Vec::new() };
        let state = acc.state().unwrap_or_default();
        *slot = self.factory.with_scalars(&state);
        state
    }

    /// The intermediate state, leaving the accumulator as it was.
    pub fn state(&self) -> Vec<Value> {
        self.scalars().iter().map(|v| v.to_array().map(|a| value_at(a.as_ref(), 0)).unwrap_or_default()).collect()
    }

    /// The aggregate's value now.
    pub fn result(&self) -> Value {
        let state = self.scalars();
        let Some(mut copy) = self.factory.with_scalars(&state) else { return Value::Null };
        match copy.evaluate() {
            Ok(v) => v.to_array().map(|a| value_at(a.as_ref(), 0)).unwrap_or_default(),
            Err(_) => Value::Null,
        }
    }

    /// Folds another group's state into this one.
    pub fn merge(&mut self, other: &UdafState) {
        let state = other.state();
        let arrays: Result<Vec<ArrayRef>, _> =
            self.factory.state_types.iter().zip(&state).map(|(t, v)| values_to_array(std::iter::once(v), t)).collect();
        if let (Ok(arrays), Some(acc)) = (arrays, self.acc.get_mut().as_mut()) {
            let _ = acc.merge_batch(&arrays);
        }
    }

    /// A state read back from the changelog.
    pub fn restore(factory: Arc<UdafFactory>, state: &[Value]) -> UdafState {
        let acc = factory.with_state(Some(state));
        UdafState { factory, acc: RefCell::new(acc) }
    }

    pub fn factory(&self) -> &Arc<UdafFactory> {
        &self.factory
    }

    pub fn heap_bytes(&self) -> usize {
        self.acc.borrow().as_ref().map_or(0, |a| a.size())
    }
}

impl Clone for UdafState {
    fn clone(&self) -> UdafState {
        let acc = self.factory.with_scalars(&self.scalars());
        UdafState { factory: self.factory.clone(), acc: RefCell::new(acc) }
    }
}

impl std::fmt::Debug for UdafState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", self.factory.name, self.state())
    }
}

impl PartialEq for UdafState {
    fn eq(&self, other: &UdafState) -> bool {
        self.factory.name == other.factory.name && self.state() == other.state()
    }
}
