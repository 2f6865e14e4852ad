//! Printing: tables for people, one JSON document for programs.

use serde::Serialize;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows as an aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(header, rows));
}

/// Rows as an aligned table with a header, one line each (for callers that compose output).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A compact one-line rendering of a JSON value, cut to `max` characters.
pub fn short_json(value: &serde_json::Value, max: usize) -> String {
    let s = value.to_string();
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A field as text: strings as they are, null or missing as empty, anything else as JSON.
pub(super) fn text(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The agents table (rows as the views or the server's JSON give them).
pub fn print_agents(agents: &[serde_json::Value]) {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            [
                "agent_id",
                "status",
                "queued",
                "processed",
                "failed_attempts",
            ]
            .iter()
            .map(|k| text(a, k))
            .collect()
        })
        .collect();
    print_table(
        &["AGENT", "STATUS", "QUEUED", "PROCESSED", "FAILURES"],
        &rows,
    );
}

/// The dead-letters table.
pub fn print_dead_letters(rows: &[serde_json::Value]) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                text(d, "agent_id"),
                text(d, "reason"),
                short_json(d.get("message").unwrap_or(&serde_json::Value::Null), 80),
            ]
        })
        .collect();
    print_table(&["AGENT", "REASON", "MESSAGE"], &table);
}
