// The `auto` backend's choice between WebGPU and the CPU engine, by measurement: a real but weak
// GPU (an integrated laptop GPU) can be slower than the CPU workers on small models. The worker
// times a few steps of the configured model on both (`measure`), keeps the faster, and says why
// with both figures. A choice is kept for models of about the same size and measured again when
// the parameter count changes by REDECIDE× or more either way. Pure logic: tested in node with
// injected timings (tests/js/engine-pick.test.mjs).

/** A parameter count this many times larger or smaller than the measured one is measured again. */
export const REDECIDE = 2;

const ms = (x) => `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms/step`;

/**
 * The faster of the two from measured ms per step: `{gpu, note}`. `timings` is `{gpuMs, cpuMs}`
 * (gpuMs null when the GPU could not run the model); `ctx` names them: `{gpuName, workers}`.
 */
export function decide({ gpuMs, cpuMs }, { gpuName = 'GPU', workers = 1 } = {}) {
  const cpu = `CPU ${ms(cpuMs)} (${workers} worker${workers === 1 ? '' : 's'})`;
  if (gpuMs === null || !Number.isFinite(gpuMs)) {
    return { gpu: false, note: `auto: the WebGPU adapter ${gpuName} could not time this model; ${cpu}` };
  }
  const gpu = `WebGPU (${gpuName}) ${ms(gpuMs)}`;
  if (!Number.isFinite(cpuMs) || gpuMs < cpuMs) {
    return { gpu: true, note: `auto, measured: ${gpu} against ${cpu}: the GPU is faster` };
  }
  return { gpu: false, note: `auto, measured: ${cpu} against ${gpu}: the CPU is faster` };
}

/** Whether a decision measured at `measuredParams` parameters still holds at `params`. */
export function stillHolds(measuredParams, params) {
  if (!(measuredParams > 0 && params > 0)) return false;
  const r = params / measuredParams;
  return r < REDECIDE && r > 1 / REDECIDE;
}

/**
 * Keeps the last decision: `pick(params, ctx)` measures (with the injected async `measure()` →
 * `{gpuMs, cpuMs}`) only when there is no decision for a model of about this size.
 */
export class EnginePicker {
  constructor(measure) {
    this.measure = measure;
    this.last = null; // {params, decision, timings}
  }

  async pick(params, ctx) {
    if (this.last && stillHolds(this.last.params, params)) {
      return { ...this.last.decision, measured: false };
    }
    const timings = await this.measure();
    const decision = decide(timings, ctx);
    this.last = { params, decision, timings };
    return { ...decision, measured: true };
  }
}
