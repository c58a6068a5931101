//! What one request may cost — depth, complexity and aliases — counted over the whole request (the
//! operations of a batch together) and checked before anything runs.
//!
//! Complexity is async-graphql's: one unit per field, and a connection field costs its page size
//! times its selection (see [`super::pagination::connection_complexity`]), so nested connections
//! cannot fan out within the depth limit. A batch is validated once without running, to learn what
//! each operation costs; only when the sum fits does it run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};

use super::GatewaySchema;

/// Deepest operation accepted; far beyond what the schema's real paths need.
pub const MAX_DEPTH: usize = 16;
/// Most complexity units one request may cost, all operations of a batch together.
pub const MAX_COMPLEXITY: usize = 2_000;
/// Most aliased fields one request may hold, all operations of a batch together.
pub const MAX_ALIASES: usize = 500;

/// What a request (or a whole batch) costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub complexity: usize,
    /// The deepest operation.
    pub depth: usize,
    pub aliases: usize,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            complexity: self.complexity.saturating_add(other.complexity),
            depth: self.depth.max(other.depth),
            aliases: self.aliases.saturating_add(other.aliases),
        }
    }

    /// Why the request is refused, if it costs more than allowed.
    pub fn refusal(self) -> Option<String> {
        if self.depth > MAX_DEPTH {
            return Some(format!(
                "the query is too deep: {} levels, the limit is {MAX_DEPTH}",
                self.depth
            ));
        }
        if self.complexity > MAX_COMPLEXITY {
            return Some(format!(
                "the request is too complex: it costs {} units (a field costs 1, a connection its page \
                 size times its selection), the limit is {MAX_COMPLEXITY} for the whole request, all \
                 operations of a batch together",
                self.complexity
            ));
        }
        if self.aliases > MAX_ALIASES {
            return Some(format!(
                "the request has too many aliases: {}, the limit is {MAX_ALIASES} for the whole \
                 request, all operations of a batch together",
                self.aliases
            ));
        }
        None
    }
}

/// The schema extension that measures each operation and refuses those over the limits.
pub(crate) struct RequestLimits;

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Measure::default())
    }
}

/// Marks a request that is only measured: validated, its cost written here, never run.
#[derive(Clone, Default)]
struct Probe(Arc<Mutex<Option<Cost>>>);

#[derive(Default)]
struct Measure {
    aliases: AtomicUsize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Measure {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        self.aliases.store(aliases(&document), Ordering::Relaxed);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let cost = Cost {
            complexity: result.complexity,
            depth: result.depth,
            aliases: self.aliases.load(Ordering::Relaxed),
        };
        if let Some(Probe(found)) = ctx.data_opt::<Probe>() {
            *found.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(cost);
        }
        match cost.refusal() {
            Some(message) => Err(vec![ServerError::new(message, None)]),
            None => Ok(result),
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if ctx.data_opt::<Probe>().is_some() {
            return Response::default();
        }
        next.run(ctx, operation_name).await
    }
}

/// What the requests of a batch cost together, learned by validating each without running it.
/// Requests that do not validate count nothing here: they fail on their own when run.
pub async fn batch_cost(schema: &GatewaySchema, requests: &mut [Request]) -> Cost {
    let mut total = Cost::default();
    for request in requests.iter_mut() {
        let probe = Probe::default();
        let mut measured = Request::new(request.query.clone()).variables(request.variables.clone());
        measured.operation_name = request.operation_name.clone();
        if let Ok(document) = request.parsed_query() {
            measured.set_parsed_query(document.clone());
        }
        measured.data.insert(probe.clone());
        schema.execute(measured).await;
        let cost = probe.0.lock().unwrap_or_else(|poison| poison.into_inner()).take();
        total = total.add(cost.unwrap_or_default());
    }
    total
}

/// Aliased fields in `document`, with every fragment counted where it is spread.
fn aliases(document: &ExecutableDocument) -> usize {
    let mut counter = AliasCounter {
        document,
        fragments: HashMap::new(),
        visiting: HashSet::new(),
    };
    document
        .operations
        .iter()
        .map(|(_, operation)| counter.selection_set(&operation.node.selection_set.node))
        .fold(0, usize::saturating_add)
}

struct AliasCounter<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a str, usize>,
    /// Fragments being counted: a cycle counts nothing (validation refuses it anyway).
    visiting: HashSet<&'a str>,
}

impl<'a> AliasCounter<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> usize {
        let mut count: usize = 0;
        for selection in &set.items {
            let here = match &selection.node {
                Selection::Field(field) => usize::from(field.node.alias.is_some())
                    .saturating_add(self.selection_set(&field.node.selection_set.node)),
                Selection::InlineFragment(fragment) => self.selection_set(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str()),
            };
            count = count.saturating_add(here);
        }
        count
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        if let Some(known) = self.fragments.get(name) {
            return *known;
        }
        if !self.visiting.insert(name) {
            return 0;
        }
        let count = match self.document.fragments.get(name) {
            Some(fragment) => self.selection_set(&fragment.node.selection_set.node),
            None => 0,
        };
        self.visiting.remove(name);
        self.fragments.insert(name, count);
        count
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    #[test]
    fn aliases_are_counted_where_fragments_are_spread() {
        let document = parse_query(
            "query { a: viewer { ...F } b: viewer { ...F } c: viewer { id } }
             fragment F on Viewer { x: user { id } y: user { id } }",
        )
        .unwrap();
        assert_eq!(aliases(&document), 3 + 2 * 2);
        let cyclic = parse_query("query { ...A } fragment A on Query { a: x ...A }").unwrap();
        assert_eq!(aliases(&cyclic), 1);
    }
}
