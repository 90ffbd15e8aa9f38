//! `KEY=VALUE` overrides of any knob of a resolved run configuration (`--set` on the CLI):
//! the key is a dotted path into the configuration as written to `config.yaml`, the value is
//! YAML. Unknown keys and ill-typed values are errors that name the key.

use serde::{de::DeserializeOwned, Serialize};
use serde_yaml::Value;

use crate::error::{Error, Result};

/// Applies `KEY=VALUE` overrides, in order, to any serializable configuration.
///
/// `schedule.rounds=6`, `task.gradient.lr=0.01`, `schedule.mentor.sampling.temperature=0`,
/// `schedule.restart=continue`. A key absent from the written configuration (a field left out
/// at its default, such as `schedule.mentor.fit`, or a field of an empty section) is accepted
/// when the configuration type has it: tandem's configurations deny unknown fields, so a
/// misspelt key is an error naming it and the keys known there.
pub fn apply_overrides<T: Serialize + DeserializeOwned>(config: &T, sets: &[String]) -> Result<T> {
    if sets.is_empty() {
        return serde_yaml::to_value(config)
            .and_then(serde_yaml::from_value)
            .map_err(|e| Error::config("configuration", e.to_string()));
    }
    let mut root =
        serde_yaml::to_value(config).map_err(|e| Error::config("configuration", e.to_string()))?;
    for set in sets {
        let (key, raw) = set.split_once('=').ok_or_else(|| {
            Error::config(
                format!("override `{set}`"),
                "expected KEY=VALUE, e.g. schedule.rounds=6",
            )
        })?;
        let key = key.trim();
        let value: Value = serde_yaml::from_str(raw).map_err(|e| {
            Error::config(
                format!("override `{key}`"),
                format!("value `{raw}` is not YAML: {e}"),
            )
        })?;
        let absent = set_path(&mut root, key, value)?;
        // Check each override on its own, so that a type error names its key.
        serde_yaml::from_value::<T>(root.clone()).map_err(|e| match &absent {
            Some(unknown) if e.to_string().contains("unknown field") => {
                Error::config(format!("override `{key}`"), unknown)
            }
            _ => Error::config(format!("override `{key}={raw}`"), e.to_string()),
        })?;
    }
    serde_yaml::from_value(root).map_err(|e| Error::config("configuration", e.to_string()))
}

/// Sets `key` to `value`; when a segment of the key was absent, returns the error to give if
/// the configuration type does not know it either.
fn set_path(root: &mut Value, key: &str, value: Value) -> Result<Option<String>> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::config(
            format!("override `{key}`"),
            "empty key segment",
        ));
    }
    let mut node = root;
    let mut absent = None;
    for (i, part) in parts.iter().enumerate() {
        let path = parts[..=i].join(".");
        if node.is_null() {
            *node = Value::Mapping(Default::default());
        }
        let Value::Mapping(map) = node else {
            return Err(Error::config(
                format!("override `{key}`"),
                format!("`{}` is a value, not a section", parts[..i].join(".")),
            ));
        };
        let k = Value::String(part.to_string());
        let fresh_section = map.is_empty();
        if !map.contains_key(&k) && !fresh_section && absent.is_none() {
            let mut known: Vec<String> = map
                .keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect();
            known.sort();
            absent = Some(format!(
                "unknown key `{path}`; known here: {} (and the fields left at their defaults)",
                known.join(", ")
            ));
        }
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(absent);
        }
        node = map.entry(k).or_insert(Value::Null);
    }
    Ok(absent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Restart, RunConfig, Schedule};
    use crate::tune::TuneConfig;

    fn config(schedule: &str) -> RunConfig {
        RunConfig {
            task: TuneConfig::default(),
            schedule: Schedule::builtin(schedule).unwrap(),
        }
    }

    fn sets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overrides_reach_nested_knobs_of_task_and_schedule() {
        let c = apply_overrides(
            &config("catalyst"),
            &sets(&[
                "schedule.rounds=6",
                "schedule.restart=continue",
                "schedule.mentor.candidates=5",
                "schedule.mentor.sampling.temperature=0",
                "task.gradient.lr=0.01",
                "task.prompt_len=4",
            ]),
        )
        .unwrap();
        assert_eq!(c.schedule.rounds, 6);
        assert_eq!(c.schedule.restart, Restart::Continue);
        let m = c.schedule.mentor.as_ref().unwrap();
        assert_eq!((m.candidates, m.sampling.temperature), (5, 0.0));
        assert_eq!((c.task.gradient.lr, c.task.prompt_len), (0.01, 4));
        let untouched = config("catalyst");
        assert_eq!(c.schedule.final_steps, untouched.schedule.final_steps);
        assert_eq!(apply_overrides(&untouched, &[]).unwrap(), untouched);
    }

    #[test]
    fn bad_overrides_name_the_key() {
        let c = config("catalyst");
        let err = |s: &str| apply_overrides(&c, &sets(&[s])).unwrap_err().to_string();
        let e = err("schedule.roundz=3");
        assert!(e.contains("schedule.roundz") && e.contains("rounds"), "{e}");
        let e = err("schedule.rounds=three");
        assert!(e.contains("schedule.rounds=three"), "{e}");
        let e = err("schedule.rounds");
        assert!(e.contains("KEY=VALUE"), "{e}");
        let e = err("schedule.rounds.x=1");
        assert!(e.contains("is a value"), "{e}");
        let e = err("schedule.restart=sideways");
        assert!(e.contains("schedule.restart=sideways"), "{e}");
        let e = err("schedule.mentor.fitt=true");
        assert!(
            e.contains("schedule.mentor.fitt") && e.contains("known here") && e.contains("history"),
            "{e}"
        );
        let e = err("schedule.mentor.fit=sometimes");
        assert!(e.contains("schedule.mentor.fit=sometimes"), "{e}");
        let e = err("task.gradient.lrr.x=1");
        assert!(
            e.contains("task.gradient.lrr") && e.contains("known here"),
            "{e}"
        );
    }

    /// Fields left out of the written configuration at their defaults can still be set.
    #[test]
    fn fields_at_their_defaults_can_be_set() {
        let c = apply_overrides(
            &config("catalyst-probe"),
            &sets(&[
                "schedule.mentor.fit=true",
                "schedule.mentor.mask=true",
                "schedule.mentor.calls=2",
                "schedule.mentor.temperatures=[0.5, 1.0]",
                "schedule.probe.screen.candidates=8",
                "schedule.probe.screen.examples=50",
            ]),
        )
        .unwrap();
        let m = c.schedule.mentor.as_ref().unwrap();
        assert!(m.fit && m.mask);
        assert_eq!((m.calls, m.temperatures.clone()), (2, vec![0.5, 1.0]));
        let screen = c.schedule.probe.unwrap().screen.unwrap();
        assert_eq!((screen.candidates, screen.examples), (8, 50));
    }
}
