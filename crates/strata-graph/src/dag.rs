//! Scheduling facts of the stage DAG: parallel levels, the critical path and the widest level.
//! Only the stages the target needs take part.

use crate::stages::Graph;

/// Levels, critical path and parallelism of the stages a target needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// `level[i]` for every stage: the longest path (in edges) from a root stage, `None`
    /// for stages the target does not need.
    pub level: Vec<Option<usize>>,
    /// Stage indices per level, in index order.
    pub levels: Vec<Vec<usize>>,
    /// The longest chain of stages ending at the target, root first.
    pub critical_path: Vec<usize>,
    /// The size of the widest level: how many stages can build at once.
    pub max_parallelism: usize,
}

/// Computes levels as the longest path from the roots (`FROM scratch` or an image), the
/// critical path (walking back from the target through the dependency with the highest
/// level, the lowest index on ties) and the widest level.
pub fn schedule(graph: &Graph) -> Schedule {
    let n = graph.stages.len();
    let mut level: Vec<Option<usize>> = vec![None; n];
    // Dependencies always resolve to a stage that is acyclic (checked when building), and
    // FROM/--from=<index> only point backwards; named --from may point forwards, so iterate
    // to a fixed point (at most n rounds).
    for _ in 0..=n {
        let mut changed = false;
        for s in &graph.stages {
            if !graph.reachable[s.index] {
                continue;
            }
            let l = s
                .deps
                .iter()
                .map(|d| level[d.stage].map_or(0, |x| x + 1))
                .max()
                .unwrap_or(0);
            if level[s.index] != Some(l) {
                level[s.index] = Some(l);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = level.iter().flatten().max().map_or(0, |m| m + 1);
    let mut levels = vec![Vec::new(); depth];
    for (i, l) in level.iter().enumerate() {
        if let Some(l) = l {
            levels[*l].push(i);
        }
    }
    let mut critical_path = vec![graph.target];
    let mut at = graph.target;
    while let Some(next) = graph.stages[at]
        .deps
        .iter()
        .map(|d| d.stage)
        .max_by(|a, b| level[*a].cmp(&level[*b]).then(b.cmp(a)))
    {
        critical_path.push(next);
        at = next;
    }
    critical_path.reverse();
    let max_parallelism = levels.iter().map(Vec::len).max().unwrap_or(0);
    Schedule {
        level,
        levels,
        critical_path,
        max_parallelism,
    }
}
