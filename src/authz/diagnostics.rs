//! Cedar parse and validation errors as a list of messages with line and column.

use std::fmt::Write as _;

use miette::Diagnostic;

/// One problem in a piece of Cedar source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// 1-based; `None` when Cedar gave no location.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Problem {
    /// `line:column: message`, or just the message.
    pub fn render(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{line}:{column}: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// Flattens a Cedar diagnostic (and its related ones) into problems located in `source`.
pub fn problems_of(diagnostic: &dyn Diagnostic, source: &str) -> Vec<Problem> {
    let related: Vec<&dyn Diagnostic> = diagnostic.related().map(|r| r.collect()).unwrap_or_default();
    if related.is_empty() {
        return vec![problem_of(diagnostic, source)];
    }
    related.into_iter().map(|d| problem_of(d, source)).collect()
}

fn problem_of(diagnostic: &dyn Diagnostic, source: &str) -> Problem {
    let mut message = diagnostic.to_string();
    if let Some(help) = diagnostic.help() {
        let _ = write!(message, " ({help})");
    }
    let offset = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let (line, column) = match offset {
        Some(offset) => {
            let (line, column) = line_column(source, offset);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    Problem {
        message,
        line,
        column,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn offsets_become_lines_and_columns() {
        let source = "permit(\n  principal,\n  act ion";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 10), (2, 3));
        assert_eq!(line_column(source, source.len()), (3, 10));
    }
}
