//! What the demo shows, kept twice: as the user reads it (printed as it happens) and
//! normalised for the test that compares it with `tests/e2e/tests/demo.expected`.
//!
//! Normalising replaces what differs between correct runs by placeholders: each node's MAC
//! by `<mac node-N>` (any other MAC by `<mac>`), kubectl's AGE column by `<age>`, neighbour
//! states by `<state>`, and measured figures (written with [`Report::measured`]) by their
//! names (`<ms>`, `<lost>`). Everything else — addresses, which node answers, which Pod answers, BIRD's next
//! hops, pool counts, condition messages — must match exactly.

use std::fmt::Write as _;

use crate::cluster::{Cluster, NODES};

/// The demo's output.
pub struct Report {
    /// The lines as printed.
    shown: Vec<String>,
    /// The compared lines, normalised.
    normalised: Vec<String>,
    /// Whether lines are printed to stdout as they come.
    echo: bool,
    /// `(MAC, placeholder)` of every node.
    macs: Vec<(String, String)>,
}

impl Report {
    /// A report for `cluster`'s nodes; `echo` prints each line as it is added.
    pub fn new(cluster: &Cluster, echo: bool) -> Report {
        let macs = NODES
            .iter()
            .map(|node| (cluster.host(node).mac(), format!("<mac {node}>")))
            .collect();
        Report {
            shown: Vec::new(),
            normalised: Vec::new(),
            echo,
            macs,
        }
    }

    /// A heading.
    pub fn section(&mut self, title: &str) {
        self.line("");
        self.line(&format!("=== {title} ==="));
    }

    /// A sentence.
    pub fn say(&mut self, text: &str) {
        for line in text.lines() {
            self.line(line);
        }
    }

    /// A command as a user types it, on `host`, and what it printed.
    pub fn command(&mut self, host: &str, command: &str, output: &str) {
        self.line(&format!("{host}$ {command}"));
        let age = output.lines().next().and_then(age_column);
        for line in output.trim_end().lines() {
            let line = line.trim_end();
            let without_age = match age {
                Some(span) => replace_column(line, span),
                None => line.to_string(),
            };
            let normalised = self.normalise(&format!("  {without_age}"));
            self.push(format!("  {line}"), normalised);
        }
    }

    /// A sentence with measured figures: `template` with each `{name}` of `figures`
    /// replaced by its value when shown, and by `<name>` when compared.
    pub fn measured(&mut self, template: &str, figures: &[(&str, String)]) {
        let (mut shown, mut normalised) = (template.to_string(), template.to_string());
        for (name, value) in figures {
            shown = shown.replace(&format!("{{{name}}}"), value);
            normalised = normalised.replace(&format!("{{{name}}}"), &format!("<{name}>"));
        }
        self.push(shown, normalised);
    }

    /// Lines shown but left out of the comparison (raw output with timings, such as
    /// arping's); the caller reports what it checked in them with a compared line.
    pub fn shown_only(&mut self, text: &str) {
        for line in text.trim_end().lines() {
            if self.echo {
                println!("{line}");
            }
            self.shown.push(line.to_string());
        }
    }

    fn line(&mut self, text: &str) {
        let normalised = self.normalise(text);
        self.push(text.to_string(), normalised);
    }

    fn push(&mut self, shown: String, normalised: String) {
        if self.echo {
            println!("{shown}");
        }
        self.shown.push(shown);
        self.normalised.push(normalised);
    }

    /// Every line normalised, newline-terminated.
    pub fn normalised_text(&self) -> String {
        let mut text = String::new();
        for line in &self.normalised {
            let _ = writeln!(text, "{line}");
        }
        text
    }

    fn normalise(&self, line: &str) -> String {
        let words: Vec<String> = line
            .split(' ')
            .map(|word| {
                let bare = word.trim_matches(|c: char| c == ',' || c == ')' || c == '(');
                if is_mac(bare) {
                    let lower = bare.to_lowercase();
                    let name = self
                        .macs
                        .iter()
                        .find(|(mac, _)| *mac == lower)
                        .map(|(_, name)| name.as_str())
                        .unwrap_or("<mac>");
                    word.replace(bare, name)
                } else if ["REACHABLE", "STALE", "DELAY", "PROBE"].contains(&bare) {
                    word.replace(bare, "<state>")
                } else {
                    word.to_string()
                }
            })
            .collect();
        words.join(" ")
    }
}

/// Where a kubectl table's AGE column lies in each of its lines, from the header: its start
/// and the next column's start (`None`: the last column). kubectl pads every row to the same
/// column starts, so the span holds each row's age (`5s`, `2m3s`, `<unknown>`).
fn age_column(header: &str) -> Option<(usize, Option<usize>)> {
    let start = header.find(" AGE").map(|at| at + 1)?;
    let after = &header[start + 3..];
    if !(after.is_empty() || after.starts_with(' ')) {
        return None; // AGE is part of a longer word
    }
    let next = after
        .find(|c: char| c != ' ')
        .map(|offset| start + 3 + offset);
    Some((start, next))
}

/// `line` with the AGE span replaced by a fixed-width `<age>` (the header's `AGE` kept), so
/// ages of any width compare equal and the columns after it stay aligned.
fn replace_column(line: &str, (start, next): (usize, Option<usize>)) -> String {
    let end = next.unwrap_or(line.len()).min(line.len());
    if start > end || !line.is_char_boundary(start) || !line.is_char_boundary(end) {
        return line.to_string();
    }
    let cell = line[start..end].trim();
    let placeholder = if cell == "AGE" {
        "AGE"
    } else if is_age(cell) {
        "<age>"
    } else {
        return line.to_string();
    };
    match next {
        Some(_) => format!("{}{placeholder:<8}{}", &line[..start], &line[end..]),
        None => format!("{}{placeholder}", &line[..start]),
    }
}

fn is_mac(word: &str) -> bool {
    word.len() == 17
        && word
            .split(':')
            .all(|part| part.len() == 2 && part.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_age(word: &str) -> bool {
    word == "<unknown>"
        || (word.chars().next().is_some_and(|c| c.is_ascii_digit())
            && word.ends_with(['s', 'm', 'h', 'd'])
            && word
                .chars()
                .all(|c| c.is_ascii_digit() || "smhd".contains(c)))
}

/// The first line where `actual` differs from `expected`, with both texts, or None when they
/// are equal.
pub fn difference(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (mut e, mut a) = (expected.lines(), actual.lines());
    let mut number = 0;
    loop {
        number += 1;
        match (e.next(), a.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                return Some(format!(
                    "line {number}: expected {:?}, got {:?}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            shown: Vec::new(),
            normalised: Vec::new(),
            echo: false,
            macs: vec![("c2:8d:3d:62:db:46".into(), "<mac node-2>".into())],
        }
    }

    #[test]
    fn node_macs_ages_and_states_are_normalised_and_the_rest_is_kept() {
        let mut r = report();
        r.command(
            "client",
            "ip neigh show 192.0.2.91",
            "192.0.2.91 dev eth0 lladdr C2:8D:3D:62:DB:46 REACHABLE\n\
             192.0.2.92 dev eth0 lladdr 02:00:00:00:00:01 STALE",
        );
        r.command(
            "cp",
            "kubectl get svc web",
            "NAME   TYPE           EXTERNAL-IP   AGE\n\
             web    LoadBalancer   192.0.2.91    2m3s",
        );
        r.command(
            "cp",
            "kubectl get svc -o wide",
            "NAME   EXTERNAL-IP   AGE    SELECTOR\n\
             web    192.0.2.91    2m3s   app=web\n\
             api    <pending>     5s     app=api",
        );
        r.measured("interrupted for {ms} ms", &[("ms", "812".into())]);
        r.shown_only("raw output 1.23 ms");
        assert_eq!(
            r.normalised_text(),
            "client$ ip neigh show 192.0.2.91\n\
             \x20 192.0.2.91 dev eth0 lladdr <mac node-2> <state>\n\
             \x20 192.0.2.92 dev eth0 lladdr <mac> <state>\n\
             cp$ kubectl get svc web\n\
             \x20 NAME   TYPE           EXTERNAL-IP   AGE\n\
             \x20 web    LoadBalancer   192.0.2.91    <age>\n\
             cp$ kubectl get svc -o wide\n\
             \x20 NAME   EXTERNAL-IP   AGE     SELECTOR\n\
             \x20 web    192.0.2.91    <age>   app=web\n\
             \x20 api    <pending>     <age>   app=api\n\
             interrupted for <ms> ms\n"
        );
    }

    #[test]
    fn a_changed_line_is_named() {
        assert_eq!(difference("a\nb\n", "a\nb\n"), None);
        assert_eq!(
            difference("a\nb\n", "a\nc\n").as_deref(),
            Some("line 2: expected \"b\", got \"c\"")
        );
        assert_eq!(
            difference("a\n", "a\nextra\n").as_deref(),
            Some("line 2: expected \"<end>\", got \"extra\"")
        );
    }
}
