//! Whether the step's image is on this node. A missing image fails the step naming it,
//! unless the executor asked for `container.pull`: pulling silently would download and run
//! code the node's operator never gave it (and hang a step on a slow or absent registry).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use super::probe::{Engine, answer, answer_within, last_line};

/// How long a pull (when asked) may take.
const PULL_WITHIN: Duration = Duration::from_secs(600);

/// Images seen present, so a busy agent does not ask the engine before every step. An image
/// removed afterwards makes the step fail at `run` (with `--pull never`), naming it.
static PRESENT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// `Ok` when `image` is present (after pulling it, when `pull`). Blocking.
pub fn ensure(engine: &Engine, image: &str, pull: bool) -> Result<(), String> {
    let seen = |add: bool| {
        let mut set = PRESENT.lock().unwrap_or_else(|p| p.into_inner());
        let set = set.get_or_insert_with(HashSet::new);
        if add {
            set.insert(image.to_string())
        } else {
            set.contains(image)
        }
    };
    if seen(false) {
        return Ok(());
    }
    let (present, _) = answer(&engine.bin, &["image", "inspect", image])?;
    if present {
        seen(true);
        return Ok(());
    }
    if !pull {
        return Err(format!(
            "image {image:?} is not present on this node's {} (images are not pulled unless the \
             executor sets container.pull: true; load it with `{} pull` or `{} load`)",
            engine.name(),
            engine.name(),
            engine.name()
        ));
    }
    let (pulled, text) = answer_within(&engine.bin, &["pull", image], PULL_WITHIN)?;
    if !pulled {
        return Err(format!(
            "image {image:?} could not be pulled by {}: {}",
            engine.name(),
            last_line(&text)
        ));
    }
    seen(true);
    Ok(())
}
