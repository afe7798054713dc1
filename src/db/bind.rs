//! SQLAlchemy's `text()` bind parameters: `:name` in a statement, bound from a
//! `params` mapping. Each driver wants its own markers (`$1` for PostgreSQL, `?` for
//! MySQL and SQLite), so a statement is split once into its text and its parameter
//! names, and written out per driver.
//!
//! The rule is SQLAlchemy's own (`(?<![:\w\\]):(\w+)(?!:)`): a `:` that follows
//! another `:`, a word character or a backslash is not a parameter (so `::int`
//! casts and `10:30` stay as they are), nor is one followed by a second `:`; and
//! `\:` is a literal colon. Like SQLAlchemy, it does not look inside quotes.

/// A statement split at its bind parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundSql {
    /// The text between parameters (one more piece than `uses`).
    pieces: Vec<String>,
    /// For each parameter occurrence, its index in `names`.
    uses: Vec<usize>,
    /// Parameter names in order of first appearance.
    names: Vec<String>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl BoundSql {
    /// Splits `sql` at its `:name` parameters.
    pub fn parse(sql: &str) -> Self {
        let chars: Vec<char> = sql.chars().collect();
        let mut pieces = Vec::new();
        let mut uses = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && chars.get(i + 1) == Some(&':') {
                current.push(':');
                i += 2;
                continue;
            }
            let starts_param = c == ':'
                && (i == 0
                    || !(chars[i - 1] == ':' || chars[i - 1] == '\\' || is_word(chars[i - 1])))
                && chars.get(i + 1).copied().is_some_and(is_word);
            if starts_param {
                let mut end = i + 1;
                while end < chars.len() && is_word(chars[end]) {
                    end += 1;
                }
                if chars.get(end) != Some(&':') {
                    let name: String = chars[i + 1..end].iter().collect();
                    let index = match names.iter().position(|n| *n == name) {
                        Some(index) => index,
                        None => {
                            names.push(name);
                            names.len() - 1
                        }
                    };
                    pieces.push(std::mem::take(&mut current));
                    uses.push(index);
                    i = end;
                    continue;
                }
                // `:name:`: not a parameter; copy it through.
                current.extend(&chars[i..end]);
                i = end;
                continue;
            }
            current.push(c);
            i += 1;
        }
        pieces.push(current);
        Self {
            pieces,
            uses,
            names,
        }
    }

    /// The parameter names, each once, in order of first appearance.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The statement with PostgreSQL's markers: `$k` for the k-th name (a name used
    /// twice is the same `$k`).
    pub fn numbered(&self) -> String {
        let mut out = String::new();
        for (i, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            if let Some(&index) = self.uses.get(i) {
                out.push('$');
                out.push_str(itoa::Buffer::new().format(index + 1));
            }
        }
        out
    }

    /// The statement with `?` markers (MySQL, SQLite), and for each marker the index
    /// of its name in [`BoundSql::names`].
    pub fn positional(&self) -> (String, &[usize]) {
        let mut out = String::new();
        for (i, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            if i < self.uses.len() {
                out.push('?');
            }
        }
        (out, &self.uses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_as_sqlalchemy_finds_them() {
        let sql = BoundSql::parse(
            "SELECT a::int, '10:30' FROM t WHERE id = :id AND x = :x_1 OR id = :id AND y = \\:lit AND z = :ab:",
        );
        assert_eq!(sql.names(), ["id", "x_1"]);
        assert_eq!(
            sql.numbered(),
            "SELECT a::int, '10:30' FROM t WHERE id = $1 AND x = $2 OR id = $1 AND y = :lit AND z = :ab:"
        );
        let (text, uses) = sql.positional();
        assert_eq!(
            text,
            "SELECT a::int, '10:30' FROM t WHERE id = ? AND x = ? OR id = ? AND y = :lit AND z = :ab:"
        );
        assert_eq!(uses, [0, 1, 0]);
    }

    #[test]
    fn no_parameters() {
        let sql = BoundSql::parse("SELECT 1");
        assert!(sql.names().is_empty());
        assert_eq!(sql.positional().0, "SELECT 1");
        assert_eq!(BoundSql::parse(":").numbered(), ":");
        assert_eq!(BoundSql::parse(":a").names(), ["a"]);
    }
}
