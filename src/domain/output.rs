//! Bounded step outputs, the pure part: the blob reference shape that events and views carry
//! instead of large bytes, the per-step cap with its server ceiling, and the per-job budget.
//!
//! A reference is a JSON object `{"$blob": {"sha256": "<hex>", "size": N}, "preview": "..."}`
//! (`admin gc` scans stored JSON for exactly this shape, so it must not change). The bytes live
//! in the blob store of the node that wrote them; `runtime::blobs::fetch` finds them.

use serde_json::{Value, json};

/// The key that marks a reference object.
pub const BLOB_KEY: &str = "$blob";
/// How much of a referenced output is kept inline as its preview.
pub const PREVIEW_BYTES: usize = 1024;

/// Digest and size of stored bytes, as a reference names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPointer {
    pub sha256: String,
    pub size: u64,
}

/// The reference object for `pointer`, previewing `preview_source` (cut to [`PREVIEW_BYTES`]).
pub fn blob_ref(pointer: &BlobPointer, preview_source: &[u8]) -> Value {
    json!({
        BLOB_KEY: { "sha256": pointer.sha256, "size": pointer.size },
        "preview": preview(preview_source),
    })
}

/// The pointer inside a reference object; `None` for any other value.
pub fn as_blob_ref(value: &Value) -> Option<BlobPointer> {
    let inner = value.as_object()?.get(BLOB_KEY)?.as_object()?;
    Some(BlobPointer {
        sha256: inner.get("sha256")?.as_str()?.to_string(),
        size: inner.get("size")?.as_u64()?,
    })
}

/// Every reference inside `value`, depth first.
pub fn blob_refs(value: &Value) -> Vec<BlobPointer> {
    let mut out = vec![];
    collect_refs(value, &mut out);
    out
}

fn collect_refs(value: &Value, out: &mut Vec<BlobPointer>) {
    if let Some(p) = as_blob_ref(value) {
        out.push(p);
        return;
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The first [`PREVIEW_BYTES`] of `bytes` as text, cut at a character boundary so a preview
/// never ends in half a UTF-8 sequence.
pub fn preview(bytes: &[u8]) -> String {
    let mut end = bytes.len().min(PREVIEW_BYTES);
    while end > 0 && end < bytes.len() && std::str::from_utf8(&bytes[..end]).is_err() {
        end -= 1;
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Replaces the large parts of `value` by references: every string longer than `inline`
/// bytes, then, if the value still serialises to more than `inline` bytes, the whole value
/// (stored as its JSON text). `put` stores bytes and returns their pointer. References already
/// in `value` are kept as they are, never inlined again.
pub fn externalize<E>(
    value: &mut Value,
    inline: usize,
    put: &mut impl FnMut(&[u8]) -> Result<BlobPointer, E>,
) -> Result<(), E> {
    if as_blob_ref(value).is_some() {
        return Ok(());
    }
    replace_long_strings(value, inline, put)?;
    let text = value.to_string();
    if text.len() > inline {
        let pointer = put(text.as_bytes())?;
        *value = blob_ref(&pointer, text.as_bytes());
    }
    Ok(())
}

fn replace_long_strings<E>(
    value: &mut Value,
    inline: usize,
    put: &mut impl FnMut(&[u8]) -> Result<BlobPointer, E>,
) -> Result<(), E> {
    if as_blob_ref(value).is_some() {
        return Ok(());
    }
    match value {
        Value::String(s) if s.len() > inline => {
            let pointer = put(s.as_bytes())?;
            *value = blob_ref(&pointer, s.as_bytes());
        }
        Value::Array(items) => {
            for v in items {
                replace_long_strings(v, inline, put)?;
            }
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                replace_long_strings(v, inline, put)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The per-step output cap in force, and whether the manifest asked for more than the server
/// allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputCap {
    /// Bytes kept per stream.
    pub applied: u64,
    /// What the manifest's `max_output_bytes` asked for, if anything.
    pub requested: Option<u64>,
    /// The server's ceiling (`MN_MAX_ARTIFACT_BYTES`).
    pub ceiling: u64,
}

impl OutputCap {
    /// The manifest's request, else `default`, never above `ceiling`.
    pub fn new(requested: Option<u64>, default: u64, ceiling: u64) -> OutputCap {
        OutputCap {
            applied: requested.unwrap_or(default).min(ceiling),
            requested,
            ceiling,
        }
    }

    /// Whether the manifest asked for more than the ceiling allows.
    pub fn clamped(&self) -> bool {
        self.requested.is_some_and(|r| r > self.ceiling)
    }

    /// The warning for a clamped request, naming the field at `path`.
    pub fn warning(&self, path: &str) -> Option<String> {
        let requested = self.requested.filter(|_| self.clamped())?;
        Some(format!(
            "{path}.max_output_bytes: {requested} exceeds the server ceiling \
             MN_MAX_ARTIFACT_BYTES ({}); each output stream is capped at {} bytes",
            self.ceiling, self.applied
        ))
    }

    /// The note a step's result carries when its cap was clamped.
    pub fn note(&self) -> Option<Value> {
        self.clamped().then(|| {
            json!({
                "requested": self.requested,
                "applied": self.applied,
                "ceiling": self.ceiling,
                "ceiling_setting": "MN_MAX_ARTIFACT_BYTES",
            })
        })
    }
}

/// A job's output budget: the server's, lowered (never raised) by the manifest's.
pub fn job_budget(server: u64, manifest: Option<u64>) -> u64 {
    manifest.map_or(server, |m| m.min(server))
}

/// Whether a step's output fits the job's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetVerdict {
    Within,
    /// The step's bytes would take the job past its budget; they are refused.
    Exceeded {
        used_before: u64,
        step: u64,
        budget: u64,
    },
}

/// Judges a step given the job's total *after* adding the step's bytes (what an atomic
/// increment returns), so that two nodes adding at once cannot both slip under the budget.
pub fn judge_budget(used_after: u64, step: u64, budget: u64) -> BudgetVerdict {
    if used_after <= budget {
        return BudgetVerdict::Within;
    }
    BudgetVerdict::Exceeded {
        used_before: used_after.saturating_sub(step),
        step,
        budget,
    }
}

impl BudgetVerdict {
    /// The step result's error for a refused output.
    pub fn error(&self, job_id: &str) -> Option<Value> {
        let BudgetVerdict::Exceeded {
            used_before,
            step,
            budget,
        } = *self
        else {
            return None;
        };
        Some(json!({
            "error": format!(
                "job output budget exhausted: job {job_id} has stored {used_before} bytes of step \
                 output and this step's {step} bytes would pass its budget of {budget} bytes \
                 (MN_JOB_OUTPUT_BUDGET_BYTES, lowered by config.max_job_output_bytes); the \
                 output was refused"
            ),
            "kind": "output_budget",
            "used_bytes": used_before,
            "step_bytes": step,
            "budget_bytes": budget,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_put(
        stored: &mut Vec<Vec<u8>>,
    ) -> impl FnMut(&[u8]) -> Result<BlobPointer, String> + '_ {
        move |b: &[u8]| {
            stored.push(b.to_vec());
            Ok(BlobPointer {
                sha256: format!("{:064x}", stored.len()),
                size: b.len() as u64,
            })
        }
    }

    #[test]
    fn a_reference_has_the_shape_gc_scans_for() {
        let p = BlobPointer {
            sha256: "ab".repeat(32),
            size: 3,
        };
        let r = blob_ref(&p, b"abc");
        assert_eq!(
            r,
            json!({"$blob": {"sha256": "ab".repeat(32), "size": 3}, "preview": "abc"})
        );
        assert_eq!(as_blob_ref(&r), Some(p));
        assert_eq!(as_blob_ref(&json!({"$blob": "x"})), None);
        assert_eq!(as_blob_ref(&json!("text")), None);
    }

    #[test]
    fn previews_are_cut_at_a_character_boundary() {
        let text = "é".repeat(PREVIEW_BYTES);
        let p = preview(text.as_bytes());
        assert!(p.len() <= PREVIEW_BYTES && p.len() >= PREVIEW_BYTES - 1);
        assert!(p.chars().all(|c| c == 'é'));
        assert_eq!(preview(b"short"), "short");
    }

    #[test]
    fn long_strings_become_references_and_small_values_stay() {
        let mut stored = vec![];
        let mut put = fake_put(&mut stored);
        let mut v = json!({"small": "x", "big": "y".repeat(2000), "n": 1});
        externalize(&mut v, 1500, &mut put).unwrap();
        assert_eq!(v["small"], "x");
        assert_eq!(v["n"], 1);
        let p = as_blob_ref(&v["big"]).expect("a reference");
        assert_eq!(p.size, 2000);
        assert_eq!(
            v["big"]["preview"].as_str().map(str::len),
            Some(PREVIEW_BYTES)
        );
        let mut small = json!({"a": "b"});
        externalize(&mut small, 1500, &mut put).unwrap();
        assert_eq!(small, json!({"a": "b"}));
        drop(put);
        assert_eq!(stored, vec![b"y".repeat(2000)]);
    }

    #[test]
    fn a_value_still_too_large_is_stored_whole_and_references_stay_references() {
        let mut stored = vec![];
        let mut put = fake_put(&mut stored);
        let many: Vec<Value> = (0..40).map(|i| json!(i)).collect();
        let mut v = json!({ "items": many });
        externalize(&mut v, 50, &mut put).unwrap();
        let p = as_blob_ref(&v).expect("the whole value");
        let again = v.clone();
        externalize(&mut v, 50, &mut put).unwrap();
        assert_eq!(v, again, "a reference is never wrapped or inlined again");
        drop(put);
        assert_eq!(stored.len(), 1);
        assert_eq!(p.size, stored[0].len() as u64);
        let text: Value = serde_json::from_slice(&stored[0]).unwrap();
        assert_eq!(text["items"][39], 39);
    }

    #[test]
    fn refs_are_found_anywhere_in_a_value() {
        let p = BlobPointer {
            sha256: "cd".repeat(32),
            size: 9,
        };
        let v = json!({"messages": [{"sandbox": {"stdout": blob_ref(&p, b"x")}}, "plain"]});
        assert_eq!(blob_refs(&v), vec![p]);
    }

    #[test]
    fn the_cap_never_passes_the_ceiling() {
        let c = OutputCap::new(Some(10_000), 1024, 4096);
        assert_eq!(c.applied, 4096);
        assert!(c.clamped());
        let w = c.warning("nodes.w.config").unwrap();
        assert!(
            w.contains("nodes.w.config.max_output_bytes") && w.contains("MN_MAX_ARTIFACT_BYTES")
        );
        assert_eq!(c.note().unwrap()["applied"], 4096);
        let d = OutputCap::new(None, 1024, 4096);
        assert_eq!(
            (d.applied, d.clamped(), d.warning("x")),
            (1024, false, None)
        );
        assert_eq!(OutputCap::new(None, 1024, 512).applied, 512);
        assert!(
            !OutputCap::new(None, 1024, 512).clamped(),
            "the default is not the manifest's ask"
        );
        assert_eq!(OutputCap::new(Some(2000), 1024, 4096).applied, 2000);
    }

    #[test]
    fn the_budget_can_only_be_lowered_and_is_judged_after_the_increment() {
        assert_eq!(job_budget(100, None), 100);
        assert_eq!(job_budget(100, Some(40)), 40);
        assert_eq!(job_budget(100, Some(400)), 100);
        assert_eq!(judge_budget(100, 30, 100), BudgetVerdict::Within);
        let v = judge_budget(130, 30, 100);
        assert_eq!(
            v,
            BudgetVerdict::Exceeded {
                used_before: 100,
                step: 30,
                budget: 100
            }
        );
        let e = v.error("job-1").unwrap();
        assert_eq!(e["kind"], "output_budget");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("MN_JOB_OUTPUT_BUDGET_BYTES")
        );
        assert_eq!(BudgetVerdict::Within.error("j"), None);
    }
}
