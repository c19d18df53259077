//! The GPU context: instance, adapter, device and queue, the WebGPU default limits we hold every kernel
//! to (so the same kernels run in every browser), one compute pipeline per kernel with an explicit
//! bind-group layout (built once, cached), buffer creation checked against the adapter's limits, and
//! asynchronous readback (`map_async` + a future: on the web nothing may block; natively the future is
//! driven by one blocking `device.poll`).

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use wgpu::util::DeviceExt;

/// How a kernel binds a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    Write,
    /// `var<uniform>`
    Uniform,
    /// `var<storage, read>` bound at a dynamic offset (one step's window of a per-submission buffer)
    ReadAt,
    /// `var<storage, read_write>` bound at a dynamic offset
    WriteAt,
}

/// How long a native readback waits for the GPU before the run ends with an error (a hung GPU or a
/// driver that never signals would otherwise block forever).
pub const READBACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One compute entry point: its WGSL source, entry name and bindings (binding i of group 0 is
/// `binds[i].0`).
pub struct KernelDef {
    pub name: &'static str,
    pub src: &'static str,
    pub entry: &'static str,
    pub binds: &'static [(u32, Bind)],
}

/// A built kernel: pipeline and bind-group layout.
#[derive(Clone)]
pub struct Kernel {
    pub name: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub binds: &'static [(u32, Bind)],
}

/// Which adapters are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Any adapter, software ones (lavapipe, SwiftShader) included.
    Any,
    /// Only a hardware GPU (what `BackendKind::Auto` asks for natively: lavapipe is slower than candle).
    Hardware,
}

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with (WebGPU defaults, buffer sizes raised to the adapter's).
    pub limits: wgpu::Limits,
    kernels: RefCell<HashMap<&'static str, Kernel>>,
    /// The first uncaptured device error, reported at the next sync.
    error: Arc<Mutex<Option<String>>>,
    /// Why the device was lost, if it was (reported before `error`: it explains it).
    lost: Arc<Mutex<Option<String>>>,
    /// Longest native wait for one readback ([`READBACK_TIMEOUT`] unless a test shortens it).
    pub readback_timeout: std::cell::Cell<std::time::Duration>,
}

impl GpuContext {
    /// Opens the first suitable adapter. The error says why none could be used.
    pub async fn new(choice: AdapterChoice) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
        };
        let instance = wgpu::Instance::new(desc);
        let opts = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let adapter = instance
            .request_adapter(&opts)
            .await
            .map_err(|e| Error::Backend(format!("no GPU adapter: {e}")))?;
        let info = adapter.get_info();
        if choice == AdapterChoice::Hardware && info.device_type == wgpu::DeviceType::Cpu {
            return Err(Error::Backend(format!(
                "the only GPU adapter is a software one ({}), slower than the CPU backend",
                info.name
            )));
        }
        let have = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("toyformer"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::Backend(format!("GPU adapter {} refused a device: {e}", info.name))
            })?;
        let error = Arc::new(Mutex::new(None::<String>));
        let slot = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_none() {
                *s = Some(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None::<String>));
        let slot = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_none() {
                *s = Some(format!(
                    "the GPU device was lost ({reason:?}{}{msg})",
                    if msg.is_empty() { "" } else { ": " }
                ));
            }
        });
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            kernels: RefCell::new(HashMap::new()),
            error,
            lost,
            readback_timeout: std::cell::Cell::new(READBACK_TIMEOUT),
        })
    }

    /// "webgpu: <adapter>" / "vulkan: <adapter>" for badges and logs.
    pub fn describe(&self) -> String {
        let backend = format!("{:?}", self.info.backend).to_lowercase();
        let backend = if backend == "browserwebgpu" {
            "webgpu".to_string()
        } else {
            backend
        };
        format!("{backend}: {}", self.info.name)
    }

    /// The device loss, else the first device error (validation, out of memory) since the context was
    /// made.
    pub fn take_error(&self) -> Option<String> {
        let lost = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone();
        lost.or_else(|| self.error.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The kernel `def.name`, built on first use.
    pub fn kernel(&self, def: &'static KernelDef) -> Kernel {
        if let Some(k) = self.kernels.borrow().get(def.name) {
            return k.clone();
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(def.name),
                source: wgpu::ShaderSource::Wgsl(def.src.into()),
            });
        let entries: Vec<wgpu::BindGroupLayoutEntry> = def
            .binds
            .iter()
            .map(|&(binding, kind)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match kind {
                        Bind::Read | Bind::ReadAt => {
                            wgpu::BufferBindingType::Storage { read_only: true }
                        }
                        Bind::Write | Bind::WriteAt => {
                            wgpu::BufferBindingType::Storage { read_only: false }
                        }
                        Bind::Uniform => wgpu::BufferBindingType::Uniform,
                    },
                    has_dynamic_offset: matches!(kind, Bind::ReadAt | Bind::WriteAt),
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(def.name),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(def.name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(def.name),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(def.entry),
                // every workgroup array is written before it is read (see each kernel's header), so
                // natively skip the zero-fill; the browser's WebGPU insists on it and ignores this
                compilation_options: wgpu::PipelineCompilationOptions {
                    zero_initialize_workgroup_memory: cfg!(target_arch = "wasm32"),
                    ..Default::default()
                },
                cache: None,
            });
        let k = Kernel {
            name: def.name,
            pipeline,
            layout,
            binds: def.binds,
        };
        self.kernels.borrow_mut().insert(def.name, k.clone());
        k
    }

    /// Checks that a buffer of `bytes` fits this adapter; `what` names the buffer and the config
    /// that sized it.
    pub fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        // kernels index with u32: keep every buffer below 2^31 bytes whatever the adapter allows
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(1 << 31);
        if bytes > max {
            return Err(Error::config(
                "batch_size",
                format!(
                    "the GPU buffer {what} needs {bytes} bytes, more than this adapter's limit of {max} bytes (max_storage_buffer_binding_size of {}); use a smaller batch or model, or the CPU backend",
                    self.info.name
                ),
            ));
        }
        Ok(())
    }

    /// A zero-filled storage buffer of `len` 4-byte elements (at least one), checked against the limits.
    pub fn storage(&self, what: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) as u64) * 4;
        self.check_size(what, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `data`.
    pub fn storage_init<T: bytemuck::Pod>(&self, what: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let b = self.storage(what, (std::mem::size_of_val(data) / 4).max(1))?;
        if !data.is_empty() {
            self.queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
        }
        Ok(b)
    }

    /// A uniform buffer holding `words` (padded to 16 bytes).
    pub fn uniform(&self, what: &str, words: &[u32]) -> wgpu::Buffer {
        let mut w = words.to_vec();
        w.resize(words.len().div_ceil(4) * 4, 0);
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(what),
                contents: bytemuck::cast_slice(&w),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// A buffer the host can map for reading, `bytes` long.
    pub fn staging(&self, what: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The first `bytes` of `src` (a storage buffer), copied to a staging buffer and read back.
    pub async fn read_buffer(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let stage = self.staging("readback", bytes);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(src, 0, &stage, 0, bytes);
        self.queue.submit([enc.finish()]);
        Ok(self.read_many(&[(&stage, bytes)]).await?.remove(0))
    }

    /// Maps the first `bytes` of every staging buffer in `bufs` (already copied into by a submitted
    /// command buffer) and returns their contents. Never blocks on the web; natively it waits for the
    /// GPU with one `poll`, at most `readback_timeout`: past that the error says the GPU did not finish.
    pub async fn read_many(&self, bufs: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
        let mut waits = Vec::with_capacity(bufs.len());
        for &(b, bytes) in bufs {
            let (tx, rx) = oneshot::<std::result::Result<(), wgpu::BufferAsyncError>>();
            b.slice(0..bytes)
                .map_async(wgpu::MapMode::Read, move |r| tx.send(r));
            waits.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.wait()?;
        let mut out = Vec::with_capacity(bufs.len());
        for (w, &(b, bytes)) in waits.into_iter().zip(bufs) {
            let r = w.await;
            if let Some(e) = self.take_error() {
                return Err(Error::Backend(e));
            }
            r.map_err(|e| Error::Backend(format!("reading a GPU buffer back failed: {e}")))?;
            let v = b
                .slice(0..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Backend(format!("reading a GPU buffer back failed: {e}")))?
                .to_vec();
            b.unmap();
            out.push(v);
        }
        Ok(out)
    }
}

impl GpuContext {
    /// Natively: waits for every submitted command buffer, at most `readback_timeout`.
    #[cfg(not(target_arch = "wasm32"))]
    fn wait(&self) -> Result<()> {
        let limit = self.readback_timeout.get();
        let poll = wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(limit),
        };
        match self.device.poll(poll) {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(Error::Backend(format!(
                "the GPU did not finish its work within {limit:?} (a hung or overloaded GPU, or a \
                 submission too long for it)"
            ))),
            Err(e) => Err(Error::Backend(format!("waiting for the GPU failed: {e}"))),
        }
    }

    /// The alignment of dynamic storage offsets (256 bytes in WebGPU's defaults).
    pub fn offset_align(&self) -> u64 {
        self.limits.min_storage_buffer_offset_alignment as u64
    }
}

/// A one-shot channel whose receiving end is a future (the map_async callback is the sender).
fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new((None, None::<Waker>)));
    (Sender(slot.clone()), Receiver(slot))
}

struct Sender<T>(Arc<Mutex<(Option<T>, Option<Waker>)>>);
struct Receiver<T>(Arc<Mutex<(Option<T>, Option<Waker>)>>);

impl<T> Sender<T> {
    fn send(self, v: T) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = Some(v);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
