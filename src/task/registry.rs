//! Task lookup by name: tasks registered by the program, then the built-ins.

use std::sync::{Mutex, OnceLock};

use super::{TaskSpec, BUILTIN_TASKS};
use crate::error::{Error, Result};

fn registered() -> &'static Mutex<Vec<TaskSpec>> {
    static TASKS: OnceLock<Mutex<Vec<TaskSpec>>> = OnceLock::new();
    TASKS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Makes a task declared in the program's code known by name to `tune`, `run` and the CLI.
/// A registered task shadows a built-in of the same name.
pub fn register(task: TaskSpec) {
    let mut tasks = registered().lock().unwrap_or_else(|e| e.into_inner());
    tasks.retain(|t| t.name != task.name);
    tasks.push(task);
}

/// Every known task: registered ones first, then the built-ins they do not shadow.
pub fn all_tasks() -> Vec<TaskSpec> {
    let mut tasks = registered()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for t in BUILTIN_TASKS {
        if !tasks.iter().any(|r| r.name == t.name) {
            tasks.push(t.clone());
        }
    }
    tasks
}

/// Looks up a task by name; the error lists the known ones.
pub fn lookup(name: &str) -> Result<TaskSpec> {
    let tasks = all_tasks();
    tasks
        .iter()
        .find(|t| t.name == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<_> = tasks.iter().map(|t| t.name.as_ref()).collect();
            Error::config(
                format!("task `{name}`"),
                format!("unknown; known tasks: {}", known.join(", ")),
            )
        })
}

/// A task by name, or read from a YAML file (`*.yaml`, `*.yml`) with the fields of `task!`;
/// errors name the file and the key.
pub fn resolve(name_or_file: &str) -> Result<TaskSpec> {
    if name_or_file.ends_with(".yaml") || name_or_file.ends_with(".yml") {
        return TaskSpec::from_yaml_file(std::path::Path::new(name_or_file));
    }
    lookup(name_or_file)
}
