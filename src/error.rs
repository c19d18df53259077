//! The crate's one error type. Every fallible public function returns [`Result`].
//! Messages name what is wrong (the key, the tensor, the expected and actual value) so
//! they can be shown to a user as they are.

/// Everything that can go wrong in toyformer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or inconsistent. `field` names the key.
    #[error("invalid config `{field}`: {msg}")]
    Config { field: String, msg: String },
    /// A task parameter or task input is invalid (typed text, unknown token, ...).
    #[error("task `{task}`: {msg}")]
    Task { task: String, msg: String },
    /// A weight file is malformed, or a tensor is missing or has the wrong shape.
    #[error("weights: {0}")]
    Weights(String),
    /// A tensor expected by the config is absent from the weight file.
    #[error("weights: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor { name: String, expected: Vec<usize> },
    /// A tensor in the weight file does not have the shape the config requires.
    #[error("weights: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    /// Training diverged: the loss became NaN or infinite. The last good weights are kept.
    #[error("training diverged at step {step}: loss is {loss} (the weights from step {last_good_step} are kept)")]
    Diverged {
        step: u64,
        loss: f32,
        last_good_step: u64,
    },
    /// A compute backend failed (candle or GPU).
    #[error("backend: {0}")]
    Backend(String),
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(String),
    /// File system or stream I/O failed.
    #[error("io: {0}")]
    Io(String),
    /// A data file (a custom task's) is malformed: the first bad lines, each with what is
    /// wrong, and how many lines are affected.
    #[error("data: {0}")]
    Data(DataErrors),
}

/// One thing wrong in a data file. `line` counts from 1; 0 means the whole file (empty,
/// too large).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    pub line: usize,
    pub msg: String,
}

/// The errors of a data file: the first [`DataErrors::KEPT`] of them and the number of
/// lines with at least one error.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct DataErrors {
    pub first: Vec<LineError>,
    pub lines_affected: usize,
    /// The line of the last error pushed (errors of one line come together).
    #[serde(skip)]
    last_line: Option<usize>,
}

impl DataErrors {
    /// How many errors are kept (the rest are only counted).
    pub const KEPT: usize = 20;

    /// Records `msg` for `line` (counting the line once however many errors it has).
    pub fn push(&mut self, line: usize, msg: impl Into<String>) {
        if self.last_line != Some(line) {
            self.lines_affected += 1;
            self.last_line = Some(line);
        }
        if self.first.len() < Self::KEPT {
            self.first.push(LineError {
                line,
                msg: msg.into(),
            });
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lines_affected == 0
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.msg),
            n => write!(f, "line {n}: {}", self.msg),
        }
    }
}

impl std::fmt::Display for DataErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self.first.iter().take(5).map(|e| e.to_string()).collect();
        write!(f, "{}", shown.join("; "))?;
        if self.lines_affected > 1 {
            write!(f, " ({} lines affected)", self.lines_affected)?;
        }
        Ok(())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            msg: msg.into(),
        }
    }
    pub fn task(task: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Task {
            task: task.into(),
            msg: msg.into(),
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
