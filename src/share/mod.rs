//! Sharing experiments: model weights packed into a link ([`link_weights`], over
//! [`base64url`]) and models brought in from files or URLs ([`import`]). The link's other
//! keys (task, model and training config, view state) are decoded by the page
//! (`www/js/link.js`) against its typed properties table.

pub mod base64url;
pub mod import;
pub mod link_data;
pub mod link_weights;

pub use import::{
    fitting_tasks, guess_task, import_model, Candidate, ConfigSource, Imported, TaskSource,
};
pub use link_weights::{
    decode_weights_link, encode_weights_link, fits_link, round_f16, MAX_LINK_WEIGHTS_CHARS,
    MAX_LINK_WEIGHTS_VALUES,
};
