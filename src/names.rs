//! Durable names: every name that outlives a process — the consumer group, transactional ids,
//! changelog and internal topics, sled state trees and the names of a chained query's stages.
//! An upgrade finds its state by these names, so startup, restore and `eddy explain` build them
//! here and only here, and the tests below pin them: changing one is a breaking change that
//! needs a migration note. Depends on nothing.

/// The consumer group of a pipeline (also the prefix of every internal topic).
pub fn consumer_group(app: &str) -> String {
    app.to_string()
}

/// The transactional id of one instance (`kafka.transactional.id`): one producer per instance.
pub fn transactional_id(app: &str, instance: &str) -> String {
    format!("{app}-{instance}")
}

/// The group id of the restore and table consumers (they assign partitions themselves and
/// never commit, so the group only names them on the broker).
pub fn restore_group(app: &str) -> String {
    format!("{app}-restore")
}

/// The changelog topic of a query (or stage): one partition per task.
pub fn changelog_topic(app: &str, query: &str) -> String {
    format!("{app}-{query}-changelog")
}

/// The repartition topic of a query's (or stage's) input `side`: 0 is the only or left side.
pub fn repartition_topic(app: &str, query: &str, side: usize) -> String {
    if side == 0 {
        format!("{app}-{query}-repartition")
    } else {
        format!("{app}-{query}-repartition-right")
    }
}

/// The sled tree of one task: a query's (or stage's) operator on one partition.
pub fn state_tree(query: &str, operator: &str, partition: i32) -> String {
    format!("{query}/{operator}/{partition}")
}

/// The name of stage `n` of a chained query, numbered from 1 as the plan is read from the top
/// down (the stage the top operator reads is 1): the same query text always gives the same
/// names. The top operator keeps the query's own name, so a query that had one stateful
/// operator keeps its state when the query gains none.
pub fn stage_name(query: &str, n: usize) -> String {
    format!("{query}-s{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State written by earlier versions is found under these names: they must not change.
    #[test]
    fn durable_names_are_pinned() {
        assert_eq!(consumer_group("shop"), "shop");
        assert_eq!(transactional_id("shop", "eddy-0"), "shop-eddy-0");
        assert_eq!(restore_group("shop"), "shop-restore");
        assert_eq!(changelog_topic("shop", "hourly"), "shop-hourly-changelog");
        assert_eq!(repartition_topic("shop", "hourly", 0), "shop-hourly-repartition");
        assert_eq!(repartition_topic("shop", "joined", 1), "shop-joined-repartition-right");
        assert_eq!(state_tree("hourly", "aggregate", 3), "hourly/aggregate/3");
        assert_eq!(stage_name("busiest", 2), "busiest-s2");
        assert_eq!(changelog_topic("shop", &stage_name("busiest", 1)), "shop-busiest-s1-changelog");
    }
}
