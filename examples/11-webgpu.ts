// WebGPU: buffer objects in real GPUBuffers under a 128 KiB budget. Six 32 KiB vectors do not
// fit, so TTM evicts the least recently used ones to system memory (through a staging buffer)
// and restores them (writeBuffer) when a submission needs them. saxpy runs in WGSL on the GPU
// (Dawn on SwiftShader here), each submission is a hardware fence, and every result is checked
// against the JavaScript reference. Then: a submission that depends on another timeline's
// fence (a CPU producer) waits in the scheduler, not on the caller; and free() resolves only
// once a busy buffer's GPUBuffer is really destroyed.
import { DmaFence, TtmMemType, fenceContextAlloc } from 'dmabuf';
import { WebGpuDevice, saxpyReference } from 'dmabuf/webgpu';

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';

await using gpu = await WebGpuDevice.create({ budgetBytes: 128 << 10, name: 'example' });
console.log(`adapter: ${gpu.adapterName}, VRAM budget ${gpu.budgetBytes >> 10} KiB`);

const n = 8192; // 32 KiB of f32
const vectors = [];
for (let i = 0; i < 3; i++) {
  const x = new Float32Array(n).map((_, j) => (i + j) % 9);
  const y = new Float32Array(n).map((_, j) => (i * j) % 5);
  const bx = await gpu.createBuffer({ size: n * 4, name: `x${i}` });
  const by = await gpu.createBuffer({ size: n * 4, name: `y${i}` });
  await gpu.write(bx, x);
  await gpu.write(by, y);
  vectors.push({ x, y, bx, by, a: i + 1 });
}
const where = (bo: { resource: { memType: number } | null }): string =>
  bo.resource?.memType === TtmMemType.VRAM ? 'VRAM' : 'System';
console.log(`after creating 192 KiB: ${vectors.map((v) => `${v.bx.name} ${where(v.bx)}`).join(', ')}`);

for (const { bx, by, a } of vectors) {
  const fence = await gpu.submit([{ bo: bx }, { bo: by, write: true }], (encoder, binding) =>
    gpu.kernels.saxpy(encoder, { a, x: binding(bx), y: binding(by), n }),
  );
  const timeline = fence.timelineName; // reported while pending (a signalled fence drops it, as in the kernel)
  await fence.wait();
  console.log(`saxpy a=${a}: fence ${fence.seqno} on ${timeline}: ${fence.status}`);
}

let wrong = 0;
for (const { x, y, by, a } of vectors) {
  const got = new Float32Array((await gpu.read(by)).buffer);
  const want = saxpyReference(a, x, y);
  for (let j = 0; j < n; j++) if (got[j] !== want[j]) wrong++;
}
// Explicit dependencies: the job is queued at once and runs after the producer's fence.
const producer = new DmaFence(
  { getDriverName: () => 'example', getTimelineName: () => 'cpu-producer' },
  fenceContextAlloc(),
  1,
);
const { bx, by } = vectors[0]!;
const dependent = await gpu.submit(
  [{ bo: bx }, { bo: by, write: true }],
  (encoder, binding) => gpu.kernels.saxpy(encoder, { a: 0, x: binding(bx), y: binding(by), n }),
  { dependencies: [producer] },
);
await new Promise((resolve) => setTimeout(resolve, 20));
console.log(`dependent job before the producer signals: ${dependent.status}`); // pending
producer.signal();
await dependent.wait();
console.log(`after the producer: ${dependent.status}`); // signaled

// free(): put the buffers while a submission still uses them; it resolves after the GPUBuffer is gone.
const busy = await gpu.submit([{ bo: bx }, { bo: by, write: true }], (encoder, binding) =>
  gpu.kernels.saxpy(encoder, { a: 0, x: binding(bx), y: binding(by), n }),
);
const destroyedBefore = gpu.vram.stats().destroyed;
const freed = Promise.all([gpu.free(bx), gpu.free(by)]);
console.log(`freeing while busy: fence ${busy.status}`);
await freed;
console.log(
  `really freed after the fence (${busy.status}): ${gpu.vram.stats().destroyed - destroyedBefore} GPUBuffers destroyed`,
);

const stats = gpu.ttm.stats();
console.log(
  `results: ${wrong === 0 ? 'all correct' : `${wrong} wrong`}; evictions ${stats.evictions}, ` +
    `peak VRAM ${gpu.vram.stats().peakBytes >> 10} of ${gpu.budgetBytes >> 10} KiB`,
);
for (const v of vectors.slice(1)) {
  v.bx.put();
  v.by.put();
}
if (wrong !== 0) process.exitCode = 1;
