//! The native integration tests, one module per area, in one test binary: linking candle and wgpu
//! once instead of once per file is most of the cold build on two cores.

mod common;
mod gpu_common;

mod config_errors;
mod cpu_engine;
mod cpu_gradients;
mod cpu_shards;
mod custom_data;
mod finite_eval;
mod function_length;
mod gpu_kernels;
mod gpu_model;
mod holdout_split;
mod interp_attention;
mod interp_circuits;
mod interp_dla;
mod interp_fourier;
mod interp_graph;
mod interp_head_types;
mod interp_hypotheses;
mod interp_intervene;
mod interp_neurons;
mod interp_positions;
mod interp_progress;
mod interp_seed003;
mod interp_timeline;
mod interp_workbench;
mod interp_workbench_analyses;
mod module_graph;
mod notebook;
mod positions;
mod reference_catalogue;
mod reference_model;
mod share_import;
mod share_link;
mod share_resume;
mod sweep;
mod sweep_ids;
mod targets;
mod task_catalogue;
mod task_convergence;
mod tasks;
mod tl4_import;
mod train_convergence;
mod weights_io;
